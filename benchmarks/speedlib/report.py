"""What every speed benchmark reports with: the machine, rounded seconds, ratios, the JSON file."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import click
import torch

from dgl_emu.utils import atomic_write_json, environment

__all__ = ["RESULTS", "SECONDS_DIGITS", "machine", "emit", "secs", "ratio"]

RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine() -> dict:
    """What the numbers were measured on: a training run's :func:`~dgl_emu.utils.environment`
    (versions, CPU capability, threads) plus the core count, platform and processor."""
    env = environment(torch.device("cpu"))
    return {"cpu_count": os.cpu_count(), "torch_threads": env.pop("threads"),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(), **env}


def emit(name: str, result: dict, save: bool) -> None:
    result = {"benchmark": name, **result, "machine": machine()}
    if save:
        atomic_write_json(RESULTS / f"speed-{name}.json", result)
    click.echo(json.dumps(result))


SECONDS_DIGITS = 6
"""Decimals kept for every reported time in seconds."""


def secs(seconds: float) -> float:
    """A time as reported: rounded to :data:`SECONDS_DIGITS` decimals."""
    return round(seconds, SECONDS_DIGITS)


def ratio(numerator: float, denominator: float, digits: int) -> float:
    """``numerator / denominator`` of the two times as reported (rounded to :data:`SECONDS_DIGITS`),
    rounded to ``digits``, so the JSON's ratio is the ratio of its own seconds."""
    return round(secs(numerator) / secs(denominator), digits)

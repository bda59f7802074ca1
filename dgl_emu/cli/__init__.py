"""The ``dgl-emu`` command line: ``run``, ``evaluate``, ``predict``, ``datasets``, ``components``.

Modules named in the ``DGL_EMU_PLUGINS`` environment variable (comma-separated) are imported
first, so components they register appear in the choices and help of every command.
"""
from __future__ import annotations

import importlib
import os
import sys

import click


def _load_plugins() -> None:
    for name in filter(None, (m.strip() for m in os.environ.get("DGL_EMU_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            sys.exit(f"Error: DGL_EMU_PLUGINS: cannot import {name!r} ({e})")


_load_plugins()

from .datasets import datasets  # noqa: E402  (after the plugins: options are built at import)
from .inspect import components, evaluate, format_metrics_table, predict  # noqa: E402
from .run import run  # noqa: E402

__all__ = ["main", "format_metrics_table"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dgl-emu")
def main():
    """dgl-emu: Embedding MUtation (EMU) for knowledge-graph link prediction on DGL."""


for _command in (run, evaluate, predict, datasets, components):
    main.add_command(_command)

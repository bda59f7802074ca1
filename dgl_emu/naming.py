"""Run names: the one scheme behind ``dgl-emu run``'s default run directory and the benchmark grids' run ids.

``<dataset>[-<encoder>]-<model>-<sampler|regime>[-rec]-<emu variant|plain>[-2draws]-d<dim>-s<seed>[-<key><value>...]``

Both callers use :func:`run_name`; they differ in one word only. The grids call EMU's default
variant (the mutation) ``emu``: their ids are the file names of committed results, so they keep
it. :func:`dgl_emu.pipeline.default_output` calls it by its registry name, ``mutation``, as the
run directories it has always made (``runs/umls-rotate-uniform-mutation-d64-s0``).
"""
from __future__ import annotations

import enum
from pathlib import Path
from typing import Any, Sequence

from .config import RunConfig
from .config.sections import registry_of
from .data.datasets import DATASETS, SYNTHETIC

__all__ = ["run_name", "norm", "NAMED_FIELDS"]

#: options that the fixed parts of a name already say; an axis over any other adds ``<key><value>``
NAMED_FIELDS = frozenset({"dataset", "train", "encoder", "model", "sampler", "regime", "reciprocal", "emu",
                          "mutation", "separate_negatives", "dim", "seed"})


def norm(value: Any) -> str:
    """A value as a name writes it, and its comparable form: YAML ``true``, an enum and ``"True"`` agree.

    Parameters
    ----------
    value : object
        An option's value.

    Returns
    -------
    str

    Examples
    --------
    >>> norm(True), norm(0.05), norm(256.0), norm([5, -1]), norm(" RotatE ")
    ('true', '0.05', '256', '5,-1', 'rotate')
    """
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (list, tuple)):
        return ",".join(norm(v) for v in value)
    return str(value).strip().lower()


def _dataset(cfg: RunConfig) -> str:
    """The dataset's registry name (any spelling of it), or the folder of its ``train`` file."""
    data = cfg.data
    if data.train:
        return Path(data.train).parent.name
    if data.dataset.lower() == SYNTHETIC:
        return SYNTHETIC
    try:
        return DATASETS.get(data.dataset).name
    except (KeyError, ValueError):
        return data.dataset


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def run_name(cfg: RunConfig, axes: Sequence[str] = (), *, mutation_label: str = "emu") -> str:
    """The name of a run of ``cfg``: a run directory's or a grid run's id.

    The encoder is left out for lookup tables; an all-entity regime (``1vsall``, ``kvsall``) takes
    the sampler's place, and reciprocal relations add ``rec``; EMU variants other than the
    mutation are named (``mixup``, ``smoothing``), and ``2draws`` marks separate negatives for the
    EMU pass; every key of ``axes`` that the fixed parts do not say (:data:`NAMED_FIELDS`) adds
    ``<key><value>`` (e.g. ``lr0.05``; a section's option by its last name, ``chunk_size256``),
    except where the value is unset (``null``). Characters other than letters, digits, ``.``,
    ``_`` and ``-`` become ``_``.

    Parameters
    ----------
    cfg : RunConfig
        A validated configuration.
    axes : sequence of str
        The options that vary between the runs being named (a grid's axes).
    mutation_label : str
        The word for EMU's default variant, the mutation: ``emu`` (the grids) or ``mutation``
        (:func:`~dgl_emu.pipeline.default_output`).

    Returns
    -------
    str

    Examples
    --------
    >>> cfg = RunConfig(dataset="FB15k-237", model="distmult", dim=100, lr=0.05).validate()
    >>> run_name(cfg, ["model", "lr"])
    'fb15k-237-distmult-uniform-emu-d100-s0-lr0.05'
    >>> run_name(RunConfig(dataset="umls", emu=False, seed=3).validate(), mutation_label="mutation")
    'umls-rotate-uniform-plain-d64-s3'
    """
    parts = [_dataset(cfg)]
    if cfg.gnn:
        parts.append(cfg.encoder.name)
    sampled = registry_of("regime").get(cfg.regime.name).uses_sampler
    parts += [cfg.model.name, cfg.sampler.name if sampled else cfg.regime.name]
    if cfg.regime.options["reciprocal"]:
        parts.append("rec")
    if not cfg.emu_enabled:
        parts.append("plain")
    else:
        parts.append(mutation_label if cfg.emu.name == "mutation" else cfg.emu.name)
        if cfg.emu.options.get("separate_negatives"):
            parts.append("2draws")
    parts += [f"d{cfg.model.options['dim']}", f"s{cfg.seed}"]
    view = {**cfg.flat(), **cfg.aliased()}
    for key in axes:
        value = view.get(key)
        if key not in NAMED_FIELDS and value is not None:  # an unset option names nothing
            parts.append(f"{key.rsplit('.', 1)[-1]}{norm(value)}")
    return _safe("-".join(parts))

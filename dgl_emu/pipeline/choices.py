"""Options a run chooses from its data, made visible: today ``encoder.sparse``.

``encoder.sparse: null`` (the default) lets the lookup tables choose row (sparse) gradients by
their size: from :data:`~dgl_emu.nn.encoders.SPARSE_FROM_ENTITIES` entities on. The choice is
made when the model is built, once the data are loaded. :func:`chosen_options` says what was
chosen and why; the run prints it once at its start, writes it into its ``config.yaml`` (the
resolved form: ``sparse: true``) and ``metrics.json`` (``config`` and ``chosen``), refuses what
the choice rules out (:func:`check_chosen`: gradient clipping, a whole-table regulariser; when
``encoder.sparse`` itself asks for sparse tables the configuration refuses them before any data
load) and, when it resumes, a choice that differs from the one it recorded
(:func:`check_recorded`). A ``null`` matches a recorded choice when runs are compared
(:func:`~dgl_emu.config.same_setting`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping

from ..config import COMPONENTS, ConfigError, RunConfig
from ..data import KnowledgeGraph
from ..models import KGEModel
from ..nn.encoders.base import SPARSE_FROM_ENTITIES
from ..training import REGIMES

__all__ = ["Choice", "chosen_options", "check_chosen", "check_recorded", "resolved_config", "describe_choices"]


@dataclass(frozen=True)
class Choice:
    """The value a run took for an option, and why.

    Attributes
    ----------
    value : object
        What the run uses (``True``: sparse tables).
    reason : str
        Why: ``"set by encoder.sparse"``, ``"chosen by size: 384 entities < 100,000"``, ...
    by_data : bool
        Whether the option was left ``null`` (the run chose), rather than given.
    """

    value: Any
    reason: str
    by_data: bool


def chosen_options(cfg: RunConfig, kg: KnowledgeGraph, model: KGEModel) -> Dict[str, Choice]:
    """``{dotted path: Choice}`` of the options ``cfg`` leaves to the data (or sets) that the
    built ``model`` resolved: ``encoder.sparse`` for encoders that have the option.

    Examples
    --------
    >>> from dgl_emu.data import generate_cyclic_kg
    >>> from dgl_emu.pipeline import build_model
    >>> cfg, kg = RunConfig.from_dict({"dim": 4}), generate_cyclic_kg(num_rings=2, ring_size=4)
    >>> chosen_options(cfg, kg, build_model(cfg, kg))["encoder.sparse"]
    Choice(value=False, reason='chosen by size: 8 entities < 100,000', by_data=True)
    """
    if "sparse" not in COMPONENTS["encoder"].options(cfg.encoder.name):
        return {}
    sparse = bool(model.encoder.sparse_parameters())
    given = cfg.get("encoder.sparse")
    if given is not None:
        reason = "set by encoder.sparse"
    elif REGIMES.get(cfg.regime.name).all_entities:
        reason = f"regime {cfg.regime.name} updates every row each step"
    elif sparse == (kg.num_entities >= SPARSE_FROM_ENTITIES):
        reason = (f"chosen by size: {kg.num_entities:,} entities {'>=' if sparse else '<'} "
                  f"{SPARSE_FROM_ENTITIES:,}")
    else:
        reason = f"the tables of {type(model.encoder).__name__}"  # e.g. sharded tables, sparse at any size
    return {"encoder.sparse": Choice(sparse, reason, given is None)}


def check_chosen(cfg: RunConfig, chosen: Mapping[str, Choice]) -> None:
    """Refuse what the run's choices rule out: gradient clipping and a whole-table regulariser
    with sparse tables (checked by the configuration, before any data load, when
    ``encoder.sparse`` is given).

    Raises
    ------
    ConfigError
        Naming the option, and that the data chose sparse tables.
    """
    sparse = chosen.get("encoder.sparse")
    if sparse is None or not sparse.value:
        return
    why = f"the lookup tables are sparse ({sparse.reason}): pass --set encoder.sparse=false for dense ones"
    if cfg.get("optimizer.max_grad_norm") is not None:
        raise ConfigError(f"optimizer.max_grad_norm: gradient clipping needs dense gradients, and {why}, or drop "
                          f"--max-grad-norm", "optimizer.max_grad_norm")
    reg = COMPONENTS["regularizer"].registry().get(cfg.regularizer.name)
    if cfg.get("regularizer.weight") and reg.whole_tables:
        raise ConfigError(f"regularizer: {cfg.regularizer.name!r} changes every row of the tables each step, and "
                          f"{why}, or use --regularizer lp", "regularizer.name")


def check_recorded(recorded: Mapping[str, Any], chosen: Mapping[str, Choice], where: str) -> None:
    """Refuse to resume the run of ``where`` (its ``config.yaml``'s flat ``recorded`` values)
    with choices other than those it trained with.

    Raises
    ------
    ConfigError
        Naming the option, both values and how to resume.
    """
    for path, choice in chosen.items():
        old = recorded.get(path)
        if old is not None and old != choice.value:
            raise ConfigError(f"{path}: the run in {where} trained with {path} = {old} (its config.yaml), and this "
                              f"run would use {choice.value} ({choice.reason}): pass --set {path}={str(old).lower()} "
                              f"to resume it, or --fresh", path)


def resolved_config(cfg: RunConfig, chosen: Mapping[str, Choice]) -> RunConfig:
    """``cfg`` with every choice written in (what ``config.yaml`` and ``metrics.json`` record)."""
    by_data = {path: c.value for path, c in chosen.items() if c.by_data}
    return cfg.updated(**by_data) if by_data else cfg


def describe_choices(chosen: Mapping[str, Choice]) -> str:
    """The line a run prints at its start, or ``""``.

    Examples
    --------
    >>> describe_choices({"encoder.sparse": Choice(True, "set by encoder.sparse", False)})
    'lookup tables: sparse (row) gradients, set by encoder.sparse (--set encoder.sparse=false for dense ones)'
    """
    sparse = chosen.get("encoder.sparse")
    if sparse is None:
        return ""
    other = "dense" if sparse.value else "sparse"
    kind = "sparse (row) gradients" if sparse.value else "dense gradients"
    return (f"lookup tables: {kind}, {sparse.reason} (--set encoder.sparse={str(not sparse.value).lower()} for "
            f"{other} ones)")

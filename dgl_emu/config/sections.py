"""The sections of a run configuration: which registry each component section draws from.

A *component section* (``model``, ``encoder``, ``regime``, ``sampler``, ``emu``, ``loss``,
``regularizer``, ``optimizer``, ``evaluator``) holds a registered ``name`` and that component's own options, exactly the
keyword arguments of its factory (see :class:`~dgl_emu.registry.Registry`). A few sections add
*wrapper* options that the pipeline applies around the component (``sampler.filtered``,
``emu.negative_label``, ``regime.reciprocal``, ...). *Plain sections* (``data``, ``training``) and the top-level keys
are fixed fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..registry import Option, Registry
from ..ranges import FloatRange, Param

__all__ = ["ComponentSpec", "COMPONENTS", "PLAIN", "TOP_LEVEL", "NONE", "CHECKPOINT_EVERY_SECONDS", "CHOSEN_BY_DATA",
           "same_setting", "registry_of"]

#: the name that switches an optional component (``emu``) off
NONE = "none"


def _interactions() -> Registry:
    from ..nn.interactions import INTERACTIONS  # start-up cost: registries import torch
    return INTERACTIONS


def _encoders() -> Registry:
    from ..nn.encoders import ENCODERS  # start-up cost: registries import torch
    return ENCODERS


def _regimes() -> Registry:
    from ..training.regimes import REGIMES  # start-up cost: registries import torch
    return REGIMES


def _samplers() -> Registry:
    from ..sampling import SAMPLERS  # start-up cost: registries import torch
    return SAMPLERS


def _mutations() -> Registry:
    from ..nn.emu import MUTATIONS  # start-up cost: registries import torch
    return MUTATIONS


def _losses() -> Registry:
    from ..losses import LOSSES  # start-up cost: registries import torch
    return LOSSES


def _regularizers() -> Registry:
    from ..losses import REGULARIZERS  # start-up cost: registries import torch
    return REGULARIZERS


def _evaluators() -> Registry:
    from ..evaluation import EVALUATORS  # start-up cost: registries import torch
    return EVALUATORS


def _optimizers() -> Registry:
    from ..training.optim import OPTIMIZERS  # start-up cost: registries import torch
    return OPTIMIZERS


@dataclass(frozen=True)
class ComponentSpec:
    """How one component section is read.

    Attributes
    ----------
    section : str
        Key in the configuration (``"sampler"``).
    registry : callable
        Returns the family's :class:`~dgl_emu.registry.Registry` (imported lazily).
    default_name : str, optional
        Name when none is given; ``None``: chosen from the encoder by the configuration.
    defaults : dict
        Option values that differ from the component's own defaults (``sampler.num_negatives``).
    wrapper : dict
        Options applied by the pipeline around the component, as :class:`Option` s.
    optional : bool
        Whether ``name: none`` switches the component off.
    search_space : dict
        Ranges of hyper-parameters that apply to every component of the section (its wrapper
        options, or options every registered component shares, such as ``lr``), as
        :mod:`dgl_emu.ranges` parameters; a component's own ranges are declared on its
        class (``search_space``), see :func:`dgl_emu.tuning.search_space`.
    """

    section: str
    registry: Callable[[], Registry]
    default_name: Optional[str]
    defaults: Dict[str, Any] = field(default_factory=dict)
    wrapper: Dict[str, Option] = field(default_factory=dict)
    optional: bool = False
    search_space: Dict[str, Param] = field(default_factory=dict)

    def options(self, name: str) -> Dict[str, Option]:
        """Every option of ``name`` in this section: the component's, then the wrapper's."""
        if self.optional and name == NONE:
            return {}
        return {**self.registry().options(name), **self.wrapper}

    def names(self) -> List[str]:
        """Valid names (``none`` first for optional sections)."""
        return ([NONE] if self.optional else []) + self.registry().names()


def _wrap(**options) -> Dict[str, Option]:
    return {k: Option(k, default, hint) for k, (hint, default) in options.items()}


#: component sections, in the order they appear in a resolved configuration
COMPONENTS: Dict[str, ComponentSpec] = {s.section: s for s in (
    ComponentSpec("model", _interactions, None, {"dim": 64}),
    ComponentSpec("encoder", _encoders, "lookup"),
    ComponentSpec("regime", _regimes, "negative_sampling", wrapper=_wrap(reciprocal=(bool, False))),
    ComponentSpec("sampler", _samplers, "uniform", {"num_negatives": 64},
                  wrapper=_wrap(filtered=(bool, False))),
    ComponentSpec("emu", _mutations, "mutation", optional=True,
                  wrapper=_wrap(negative_label=(float, 0.53), plain_weight=(float, 0.11),
                                separate_negatives=(bool, False)),
                  search_space={"negative_label": FloatRange(0.1, 0.9),
                                "plain_weight": FloatRange(0.01, 1.0, log=True)}),
    ComponentSpec("loss", _losses, "ce"),
    ComponentSpec("regularizer", _regularizers, "lp"),
    ComponentSpec("optimizer", _optimizers, None, wrapper=_wrap(switch_to_adam=(bool, False),
                                                                  max_grad_norm=(Optional[float], None),
                                                                  decay_from=(Optional[int], None)),
                  search_space={"lr": FloatRange(1e-3, 1.0, log=True)}),
    ComponentSpec("evaluator", _evaluators, "filtered"),
)}

#: seconds of training after which ``last.pt`` is written even between validations (the default of
#: ``training.checkpoint_every_seconds``): a killed run loses at most about this much work
CHECKPOINT_EVERY_SECONDS = 300.0

#: plain sections: field -> (type hint, default)
PLAIN: Dict[str, Dict[str, tuple]] = {
    "data": {"dataset": (str, "synthetic"), "data_dir": (Optional[str], None),
             "train": (Optional[str], None), "valid": (Optional[str], None),
             "test": (Optional[str], None), "drop_unseen": (bool, False),
             "format": (str, "labels"), "entity_dict": (Optional[str], None),
             "relation_dict": (Optional[str], None), "columns": (str, "hrt"),
             "entities": (Optional[int], None), "relations": (Optional[int], None),
             "triples": (Optional[int], None), "cache": (bool, True)},
    "training": {"steps": (int, 1500), "batch_size": (int, 256), "eval_every": (int, 500),
                 "patience": (Optional[int], None), "eval_batch_size": (int, 512),
                 "fanouts": (Optional[List[int]], None),
                 "checkpoint_every_seconds": (Optional[float], CHECKPOINT_EVERY_SECONDS)},
}

#: top-level keys: key -> (type hint, default)
TOP_LEVEL: Dict[str, tuple] = {"seed": (int, 0), "device": (str, "cpu"), "output": (Optional[str], None),
                               "progress": (bool, True)}


#: options whose ``null`` lets the run choose from its data, e.g. sparse lookup tables by the
#: table's size; a run records its choice in its ``config.yaml`` (see :func:`same_setting`)
CHOSEN_BY_DATA = ("encoder.sparse",)


def same_setting(path: str, old: Any, new: Any) -> bool:
    """Whether ``old`` and ``new`` values of the option ``path`` ask for the same run: equal, or
    one of them ``null`` for an option of :data:`CHOSEN_BY_DATA` (``null`` chooses from the data,
    and the same data choose alike; a run that resumes checks its choice against its record).

    Examples
    --------
    >>> same_setting("encoder.sparse", None, True), same_setting("encoder.sparse", False, True)
    (True, False)
    >>> same_setting("model.dim", None, 64)
    False
    """
    return old == new or (path in CHOSEN_BY_DATA and (old is None or new is None))


def registry_of(section: str) -> Registry:
    """The registry behind a component section."""
    return COMPONENTS[section].registry()

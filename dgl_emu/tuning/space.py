"""Search spaces: typed parameter ranges, declared next to the components they tune.

A registered component class declares the ranges of its own options as a class attribute
``search_space`` (:class:`~dgl_emu.nn.emu.EmbeddingMutation`: ``keep_prob``;
:class:`~dgl_emu.losses.SoftplusLoss`: ``adversarial_temperature``;
:class:`~dgl_emu.losses.LpRegularizer`: ``weight``), and a
:class:`~dgl_emu.config.ComponentSpec` declares the ranges of the options its section adds around
the component (``emu.negative_label``, ``emu.plain_weight``, ``optimizer.lr``).
:func:`search_space` collects them for the components a configuration chose, keyed by dotted
path; :func:`apply_overrides` and :func:`load_search_space` change, add or remove ranges from a
YAML mapping.

The range types live in :mod:`dgl_emu.ranges` (components import them); this module reads
configurations and imports no Optuna.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from ..config import ALIASES, COMPONENTS, NONE, ConfigError, RunConfig, read_yaml
from ..ranges import Choice, FloatRange, IntRange, Param, finite_number
from ..registry import did_you_mean

__all__ = ["FloatRange", "IntRange", "Choice", "Param", "search_space", "apply_overrides",
           "load_search_space", "read_search_file", "read_overrides", "check_space", "describe_space",
           "space_to_dict", "FIXED"]

#: options that are not hyper-parameters: the budget (steps, validation interval), the run's identity
FIXED = frozenset({"training.steps", "training.eval_every", "seed", "output", "device", "progress"})


def search_space(cfg: RunConfig) -> Dict[str, Param]:
    """The declared ranges of ``cfg``'s chosen components, by dotted path.

    For each component section in use (a switched-off ``emu: none`` contributes nothing), the
    ranges of the registered component's ``search_space`` class attribute, then those of the
    section's :attr:`~dgl_emu.config.ComponentSpec.search_space`, for options the component has.

    Examples
    --------
    >>> from dgl_emu.config import RunConfig
    >>> sorted(search_space(RunConfig().validate()))
    ['emu.keep_prob', 'emu.negative_label', 'emu.plain_weight', 'optimizer.lr', 'regularizer.weight']
    >>> sorted(search_space(RunConfig(emu=False, loss="softplus").validate()))
    ['loss.adversarial_temperature', 'optimizer.lr', 'regularizer.weight']
    """
    cfg = cfg.copy().validate()  # names resolved (the optimiser's follows the encoder)
    out: Dict[str, Param] = {}
    for section, spec in COMPONENTS.items():
        comp = cfg.components[section]
        if comp.name in (None, NONE):
            continue
        declared = dict(getattr(spec.registry().get(comp.name), "search_space", None) or {})
        declared.update(spec.search_space)
        known = spec.options(comp.name)
        out.update({f"{section}.{key}": p for key, p in declared.items() if key in known})
    return out


def _param(value: Any, declared: Optional[Param], current: Any) -> Param:
    """A range from its YAML form, completing a partial one from the declared range."""
    if isinstance(value, (list, tuple)):
        return Choice(tuple(value))
    if not isinstance(value, Mapping):
        raise ValueError(f"expected {{low: .., high: ..[, log: true]}}, a list of choices or null, got {value!r}")
    unknown = sorted(set(value) - {"low", "high", "log", "choices"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys: low, high, log, choices)"
                         f"{did_you_mean(unknown[0], ['low', 'high', 'log', 'choices'])}")
    if "choices" in value:
        if set(value) != {"choices"} or not isinstance(value["choices"], (list, tuple)):
            raise ValueError("choices: expected a list of values, alone")
        return Choice(tuple(value["choices"]))
    base = declared.to_dict() if isinstance(declared, (FloatRange, IntRange)) else {}
    merged = {**base, **value}
    if "low" not in merged or "high" not in merged:
        raise ValueError("needs both low and high (no range is declared for it)")
    if not isinstance(merged.get("log", False), bool):
        raise ValueError(f"log: expected true or false, got {merged['log']!r}")
    integral = isinstance(declared, IntRange) or (
        declared is None and not isinstance(current, bool) and isinstance(current, int))
    if integral or (declared is None and current is None
                    and all(isinstance(merged[k], int) and not isinstance(merged[k], bool) for k in ("low", "high"))):
        return IntRange(merged["low"], merged["high"], merged.get("log", False))
    low, high = (finite_number(merged[k], k) for k in ("low", "high"))
    return FloatRange(float(low), float(high), merged.get("log", False))


def read_overrides(data: Any, where: str) -> Dict[str, Any]:
    """``{dotted path: YAML value}`` from a mapping of paths or aliases (``keep_prob``), optionally
    under a top-level ``search:`` key; ``where`` prefixes error messages (the file)."""
    if isinstance(data, Mapping) and set(data) == {"search"}:
        data = data["search"] if data["search"] is not None else {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}expected a mapping of option: range")
    out: Dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        path = ALIASES[key].path if key in ALIASES and ALIASES[key].path else key
        if path in out:
            raise ConfigError(f"{where}search.{key}: set twice", path)
        out[path] = value
    return out


def apply_overrides(space: Mapping[str, Param], overrides: Mapping[str, Any], cfg: RunConfig,
                    where: str = "") -> Dict[str, Param]:
    """``space`` with ``overrides`` applied and every range checked against ``cfg``.

    ``overrides`` is read by :func:`read_overrides`: each maps a dotted path (or an alias) to ``{low, high[, log]}`` (a partial mapping
    keeps the declared range's other fields), a list of choices, or ``null`` (remove the
    parameter). Both ends of every range, and every choice, must be values that ``cfg`` accepts.

    Raises
    ------
    ConfigError
        Naming ``where`` (e.g. the file) and the key: an unknown path, an option that is not a
        hyper-parameter (:data:`FIXED`, component names), or a bad range.

    Examples
    --------
    >>> from dgl_emu.config import RunConfig
    >>> cfg = RunConfig().validate()
    >>> space = apply_overrides(search_space(cfg), {"emu.keep_prob": {"high": 0.6}, "lr": None,
    ...                                             "regularizer.weight": None, "sampler.num_negatives": [8, 16]}, cfg)
    >>> {k: p.describe() for k, p in space.items()}     # doctest: +NORMALIZE_WHITESPACE
    {'emu.keep_prob': 'float in [0.1, 0.6]', 'emu.negative_label': 'float in [0.1, 0.9]',
     'emu.plain_weight': 'float in [0.01, 1] (log)', 'sampler.num_negatives': 'one of 8, 16'}
    >>> apply_overrides(search_space(cfg), {"emu.keep_prob": {"high": 1.5}}, cfg, "s.yaml: ")
    Traceback (most recent call last):
    ...
    dgl_emu.config.errors.ConfigError: s.yaml: search.emu.keep_prob: high 1.5: emu.keep_prob: must be in [0, 1], got 1.5
    """
    out = dict(space)
    cfg = cfg.copy().validate()
    flat = cfg.flat()
    for path, value in read_overrides(overrides, where).items():
        key = f"{where}search.{path}"
        if path.endswith(".name") or path == "emu" or path in FIXED:
            what = ("the training budget and the run's identity are the same in every trial"
                    if path in FIXED else "a study tunes the options of fixed components; choose "
                    "components in the configuration (or compare EMU with --compare-emu)")
            raise ConfigError(f"{key}: not a hyper-parameter ({what})", path)
        if path not in flat:
            raise ConfigError(f"{key}: not an option of this configuration{did_you_mean(path, list(flat))}", path)
        if value is None:
            out.pop(path, None)
            continue
        try:
            out[path] = _param(value, space.get(path), flat[path])
        except ValueError as e:
            raise ConfigError(f"{key}: {e}", path) from None
    check_space(out, cfg, where)
    return out


def check_space(space: Mapping[str, Param], cfg: RunConfig, where: str = "") -> None:
    """Every end of every range (every choice) is a value ``cfg`` accepts; else ``ConfigError``."""
    for path, param in space.items():
        for value in param.bounds():
            try:
                cfg.updated(**{path: value})
            except ConfigError as e:
                end = ("low" if value == param.bounds()[0] else "high") if not isinstance(param, Choice) else "choice"
                raise ConfigError(f"{where}search.{path}: {end} {value!r}: {e}", path) from None


def read_search_file(path: Union[str, Path]) -> Dict[str, Any]:
    """The overrides of the YAML file ``path`` (see :func:`read_overrides`), not yet checked
    against a configuration.

    Raises
    ------
    ConfigError
        Naming the file for unreadable YAML or a non-mapping.
    """

    path = Path(path)
    return read_overrides(read_yaml(path, "YAML search space"), f"{path}: ")


def load_search_space(path: Union[str, Path], cfg: RunConfig) -> Dict[str, Param]:
    """:func:`search_space` of ``cfg`` with the overrides of the YAML file ``path``.

    Raises
    ------
    ConfigError
        Naming the file (and the key) for unreadable YAML or a bad override.
    """
    return apply_overrides(search_space(cfg), read_search_file(path), cfg, f"{Path(path)}: ")


def describe_space(space: Mapping[str, Param]) -> Dict[str, str]:
    """``{path: one line}`` for reports."""
    return {path: p.describe() for path, p in space.items()}


def space_to_dict(space: Mapping[str, Param]) -> Dict[str, Dict[str, Any]]:
    """``{path: YAML form}``, which :func:`apply_overrides` reads back."""
    return {path: p.to_dict() for path, p in space.items()}

"""The run configuration: nested sections, read from YAML or flags, checked against the registries."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from ..registry import did_you_mean
from .aliases import ALIASES, EMU_SWITCH, is_legacy
from .checks import check_config, resolved_options
from .errors import Component, ConfigError
from .sections import COMPONENTS, NONE, PLAIN, TOP_LEVEL, registry_of

__all__ = ["RunConfig", "Component", "ConfigError", "load_config"]

Assignment = Tuple[str, Any]


def _error(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", path)


def _assignments(data: Mapping[str, Any], where: str = "") -> List[Assignment]:
    """``(path, value)`` pairs of a mapping of sections, aliases, dotted paths and top-level keys."""
    out: List[Assignment] = []
    seen: Dict[str, str] = {}
    for key, value in data.items():
        key = str(key)
        if key in COMPONENTS and isinstance(value, Mapping):
            pairs = [(f"{key}.{k}", v) for k, v in value.items()]
        elif key in PLAIN and isinstance(value, Mapping):
            pairs = [(f"{key}.{k}", v) for k, v in value.items()]
        elif key in ALIASES:
            pairs = [(ALIASES[key].path or EMU_SWITCH, value)]
        elif key in TOP_LEVEL or "." in key:
            pairs = [(key, value)]
        else:
            known = sorted(set(ALIASES) | set(COMPONENTS) | set(PLAIN) | set(TOP_LEVEL))
            raise ConfigError(f"{where}{key}: unknown option{did_you_mean(key, known)}", key)
        for path, v in pairs:
            if path in seen:
                raise ConfigError(f"{where}{path}: set twice (as {seen[path]} and as {key})", path)
            seen[path] = key
            out.append((path, v))
    return out


class RunConfig:
    """Everything a ``dgl-emu run`` needs, as sections; the defaults train the generated KG.

    Build one with :meth:`from_dict` (sections, flat aliases such as ``num_negatives`` or dotted
    paths such as ``"sampler.k"``) or :func:`load_config`; :meth:`validate` checks every name
    against its registry and every option against its component's signature.

    Examples
    --------
    >>> cfg = RunConfig.from_dict({"model": "distmult", "num_negatives": 8, "sampler": {"name": "sans", "k": 2}})
    >>> cfg.sampler.name, cfg.sampler.options["num_negatives"], cfg.get("sampler.k"), cfg.get("optimizer.lr")
    ('sans', 8, 2, 0.1)
    >>> RunConfig.from_dict({"keep_prop": 0.5})
    Traceback (most recent call last):
    ...
    dgl_emu.config.errors.ConfigError: keep_prop: unknown option; did you mean 'keep_prob'?
    """

    def __init__(self, **options: Any):
        """Defaults, then ``options`` (aliases or top-level keys) applied; call :meth:`validate`."""
        self.components: Dict[str, Component] = {
            s: Component(spec.default_name, {}) for s, spec in COMPONENTS.items()}
        self.plain: Dict[str, Dict[str, Any]] = {s: {k: d for k, (_, d) in f.items()} for s, f in PLAIN.items()}
        self.top: Dict[str, Any] = {k: d for k, (_, d) in TOP_LEVEL.items()}
        #: per section, options read leniently (from a dgl-emu 0.1 file): dropped if inapplicable
        self.lenient: Dict[str, set] = {}
        if options:
            self._apply(_assignments(options), strict=True)

    # ------------------------------------------------------------------ access
    def __getattr__(self, name: str):
        d = self.__dict__
        if name in d.get("components", {}):
            return d["components"][name]
        if name in d.get("plain", {}):
            return _Section(d["plain"][name])
        if name in d.get("top", {}):
            return d["top"][name]
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TOP_LEVEL:
            self.top[name] = value
        else:
            super().__setattr__(name, value)

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted ``path`` (``"sampler.num_negatives"``, ``"seed"``)."""
        section, _, key = path.partition(".")
        if not key:
            return self.top.get(section, default)
        if section in self.components:
            comp = self.components[section]
            return comp.name if key == "name" else comp.options.get(key, default)
        return self.plain.get(section, {}).get(key, default)

    @property
    def emu_enabled(self) -> bool:
        """Whether EMU is on (``emu.name`` is not ``none``)."""
        return self.emu.name != NONE

    @property
    def gnn(self) -> bool:
        """Whether the encoder passes messages over the training graph (R-GCN, CompGCN): its
        registered class's ``needs_graph`` capability (lookup tables have none)."""
        return bool(registry_of("encoder").get(self.encoder.name).needs_graph)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]] = None, *layers: Mapping[str, Any],
                  where: str = "") -> "RunConfig":
        """A validated configuration from ``data`` and then each of ``layers`` (later wins).

        Each mapping may mix sections (``sampler: {name: sans, k: 3}``), flat aliases
        (``num_negatives``), dotted paths (``"sampler.k"``) and top-level keys; setting one path
        twice within one mapping is an error. A complete flat configuration written by dgl-emu 0.1
        is read leniently (options of components that the run did not use are dropped).
        """
        cfg = cls()
        for i, layer in enumerate((data or {},) + layers):
            cfg._apply(_assignments(layer, where if i == 0 else ""), strict=not (i == 0 and is_legacy(layer)))
        return cfg.validate()

    def _apply(self, pairs: Sequence[Assignment], strict: bool) -> None:
        names = [(p, v) for p, v in pairs if p.endswith(".name") or p == EMU_SWITCH]
        for path, value in names:  # names first: options are checked against the chosen component
            if path == EMU_SWITCH:
                continue
            section = path.split(".")[0]
            if section not in self.components:
                raise _error(path, f"unknown section {section!r}{did_you_mean(section, list(self.components))}")
            if value is not None and not isinstance(value, str):
                raise _error(path, f"expected a name, got {value!r}")
            self.components[section].name = value
        switch = dict(pairs).get(EMU_SWITCH)
        if switch is not None:
            if not isinstance(switch, bool):
                raise _error("emu", f"expected true or false, got {switch!r}")
            named = any(p == "emu.name" and v not in (None, NONE) for p, v in names)
            if not switch:
                if named and strict:
                    raise _error("emu.name", "given although EMU is switched off (--no-emu / emu: false)")
                self.emu.name = NONE
            elif self.emu.name in (None, NONE):
                self.emu.name = COMPONENTS["emu"].default_name
        if not strict and self.emu.name == NONE:
            pairs = [(p, v) for p, v in pairs if not p.startswith("emu.")]
        for path, value in pairs:
            if path.endswith(".name") or path == EMU_SWITCH:
                continue
            section, _, key = path.partition(".")
            if not key:
                if section not in TOP_LEVEL:
                    raise _error(path, f"unknown option{did_you_mean(section, list(TOP_LEVEL))}")
                self.top[section] = value
            elif section in self.components:
                self.components[section].options[key] = value
                if not strict:
                    self.lenient.setdefault(section, set()).add(key)
            elif section in PLAIN:
                if key not in PLAIN[section]:
                    raise _error(path, f"unknown option{did_you_mean(key, list(PLAIN[section]))}")
                self.plain[section][key] = value
            else:
                raise _error(path, f"unknown section{did_you_mean(section, list(COMPONENTS) + list(PLAIN))}")

    def updated(self, **overrides: Any) -> "RunConfig":
        """A validated copy with ``overrides`` (aliases or dotted paths) applied."""
        return RunConfig.from_dict(self.to_dict(), overrides)

    def copy(self) -> "RunConfig":
        """A deep copy."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ validation
    def validate(self) -> "RunConfig":
        """Resolve encoder-dependent defaults, check names, options and ranges; returns ``self``.

        Raises
        ------
        ConfigError
            Naming the option's dotted path.
        """
        check_config(self)
        return self

    # ------------------------------------------------------------------ output
    def to_dict(self) -> Dict[str, Any]:
        """The resolved configuration as nested plain values (every option of every section)."""
        out: Dict[str, Any] = {"data": dict(self.plain["data"])}
        for section, comp in self.components.items():
            out[section] = {"name": comp.name, **resolved_options(section, comp)}
        out["training"] = dict(self.plain["training"])
        out.update(self.top)
        return out

    def flat(self) -> Dict[str, Any]:
        """:meth:`to_dict` as ``{dotted path: value}``."""
        out = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    def aliased(self) -> Dict[str, Any]:
        """The resolved configuration by alias names (``num_negatives``, ``emu`` as a bool, ...).

        This is the flat shape dgl-emu 0.1 wrote, used to match and group runs of benchmark grids.
        With EMU off, the ``emu`` options are those of the default variant (as 0.1 recorded them),
        so a baseline and its EMU run differ only in ``emu``. Options of components a run does not
        use (``sans_k`` of a uniform run) are left out.
        """
        flat = self.flat()
        if not self.emu_enabled:
            flat.update({k: v for k, v in RunConfig().validate().flat().items() if k.startswith("emu.")})
        return {name: (self.emu_enabled if name == EMU_SWITCH else flat[alias.path])
                for name, alias in ALIASES.items() if name == EMU_SWITCH or alias.path in flat}

    def to_yaml(self) -> str:
        """The resolved configuration as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        parts = [f"{s}={c.name}" for s, c in self.components.items()]
        return f"RunConfig({', '.join(parts)}, seed={self.seed})"


class _Section:
    """Attribute access to a plain section's dict (``cfg.training.steps``)."""

    def __init__(self, values: Dict[str, Any]):
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._values:
            raise AttributeError(name)
        self._values[name] = value


def read_yaml(path: Union[str, Path], what: str = "YAML config") -> Any:
    """The YAML document in ``path`` (``{}`` when empty), read safely (plain data only).

    Raises
    ------
    ConfigError
        One line naming the file: unreadable, not UTF-8, or a YAML syntax error at
        ``file:line:column``.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("model:\\n  dim: 8\\n  name: [x\\n")
    >>> try:
    ...     read_yaml(p)
    ... except ConfigError as e:
    ...     print(str(e)[len(str(p)):].split(" (")[0])
    :4:1: YAML syntax error: expected ',' or ']', but got '<stream end>'
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = e.problem or e.context or "not valid YAML"
        context = ""
        if e.problem and e.context:
            context = f" ({e.context}" + (f" at line {e.context_mark.line + 1}, column {e.context_mark.column + 1}"
                                          if e.context_mark is not None else "") + ")"
        raise ConfigError(f"{where}: YAML syntax error: {problem}{context}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read {what} (not UTF-8: {e.reason} at byte {e.start})") from None
    except (OSError, yaml.YAMLError) as e:
        reason = (getattr(e, "strerror", None) or str(e)).splitlines()[0]
        raise ConfigError(f"{path}: cannot read {what} ({reason})") from None


def load_config(path: Union[str, Path], *layers: Mapping[str, Any]) -> RunConfig:
    """Read a YAML configuration (sections, aliases or both), then apply ``layers`` of overrides.

    Raises
    ------
    ConfigError
        Naming the file for unreadable YAML, a non-mapping, or an unknown key.
    """
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    overridden = {p for layer in layers for p, _ in _assignments(layer)}
    try:
        return RunConfig.from_dict(data, *layers, where=f"{path}: ")
    except ConfigError as e:
        if e.path in overridden or str(e).startswith(f"{path}: "):
            raise
        raise ConfigError(f"{path}: {e}", e.path) from None

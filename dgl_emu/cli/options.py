"""The flags of ``dgl-emu run``, generated from the configuration's aliases and registries."""
from __future__ import annotations

import enum
import inspect
from typing import Any, Dict, List, Optional, Tuple

import click
import yaml

from ..config import ALIASES, COMPONENTS, PLAIN, TOP_LEVEL, ConfigError
from ..config.aliases import EMU_SWITCH
from ..data.inputs import INPUT_FORMATS
from ..nn.encoders import COMPOSITIONS
from ..registry import Registry

__all__ = ["run_options", "given_options", "flag_for_error", "parse_set"]

#: boolean aliases whose negative flag is not ``--no-<flag>``, or that have no path of their own
_BOOL_FLAGS = {"drop_unseen": "--drop-unseen/--keep-unseen", "filtered": "--filtered/--unfiltered",
               EMU_SWITCH: "--emu/--no-emu", "switch_to_adam": "--switch-to-adam/--no-switch",
               "progress": "--progress/--no-progress"}


def _composition_registry() -> Registry:
    return COMPOSITIONS


#: options whose values are names in a registry other than their section's
_NAMED = {"encoder.composition": _composition_registry}


def _hint(path: str) -> Any:
    """The type hint of ``path``: a plain field's, or the option's in the family's components."""
    section, _, key = path.partition(".")
    if not key:
        return TOP_LEVEL[section][0]
    if section in PLAIN:
        return PLAIN[section][key][0]
    spec = COMPONENTS[section]
    if key in spec.wrapper:
        return spec.wrapper[key].hint
    for name in spec.registry().names():
        opts = spec.registry().options(name)
        if key in opts:
            return opts[key].hint
    return str


def _click_type(path: str):
    section, _, key = path.partition(".")
    if key == "name":
        return click.Choice(COMPONENTS[section].names(), case_sensitive=False)
    if path in _NAMED:
        return click.Choice(_NAMED[path]().names(), case_sensitive=False)
    hint = _hint(path)
    inner = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    hint = inner[0] if len(inner) == 1 else (float if float in inner else hint)
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return click.Choice([e.value for e in hint], case_sensitive=False)
    if hint in (int, float):
        return hint
    if hint is str and path in ("data.data_dir", "output"):
        return click.Path(file_okay=False)
    if hint is str and path in ("data.train", "data.valid", "data.test", "data.entity_dict", "data.relation_dict"):
        return click.Path(dir_okay=False)
    if path == "data.format":
        return click.Choice(INPUT_FORMATS.names(), case_sensitive=False)
    return str


def run_options(f):
    """Decorate ``f`` with one flag per alias (``--num-negatives`` ...) and ``--set``."""
    f = click.option("--set", "set_values", multiple=True, metavar="PATH=VALUE",
                     help="Any option by its dotted path, e.g. --set model.height=10 (repeatable).")(f)
    for name, alias in reversed(list(ALIASES.items())):
        if name in _BOOL_FLAGS or (alias.path and _hint(alias.path) is bool):
            flags = _BOOL_FLAGS.get(name, f"{alias.flag(name)}/--no-{alias.flag(name)[2:]}")
            f = click.option(flags, name, default=None, help=alias.help)(f)
            continue
        f = click.option(alias.flag(name), *alias.old_flags, name, type=_click_type(alias.path),
                         help=alias.help)(f)
    return f


def given_options(ctx: click.Context, options: Dict[str, Any]) -> Dict[str, Any]:
    """The alias values given on the command line (defaults left to the configuration)."""
    return {k: v for k, v in options.items()
            if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE}


def parse_set(values: Tuple[str, ...]) -> Dict[str, Any]:
    """``--set a.b=VALUE`` pairs as ``{path: value}`` (values read as YAML scalars or lists)."""
    out: Dict[str, Any] = {}
    for item in values:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise click.UsageError(f"--set {item}: expected PATH=VALUE, e.g. --set model.height=10")
        try:
            out[path.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[path.strip()] = raw
    return out


def flag_for_error(err: ConfigError, given: Dict[str, Any], set_paths: List[str]) -> Optional[str]:
    """The flag that set the option ``err`` names, if it came from the command line."""
    if err.path is None:
        return None
    for name in given:
        if ALIASES[name].path == err.path:
            return _BOOL_FLAGS.get(name, ALIASES[name].flag(name)).split("/")[0]
    if EMU_SWITCH in given and err.path.startswith("emu"):
        return "--emu"
    if err.path in set_paths:
        return f"--set {err.path}"
    section = err.path.split(".")[0]
    for name in given:  # e.g. a bad value of a component built from --model
        if ALIASES[name].path == f"{section}.name":
            return ALIASES[name].flag(name)
    return None

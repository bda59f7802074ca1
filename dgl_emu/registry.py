"""Name registries: one per component family, each able to build its components from options.

A :class:`Registry` maps normalised names to components (classes, functions or data). For
classes it also knows which constructor arguments a user may set: every parameter of the
component's factory (its ``from_kg`` class method when it has one, else the class) except the
family's *context* names, which the builder supplies (the knowledge graph, ``num_entities``, a
seed, ...). :meth:`Registry.make` checks and converts the options, injects the context and
builds the component; errors name the option and suggest the closest valid name.
"""
from __future__ import annotations

import difflib
import enum
import inspect
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterator, Mapping, Optional, Sequence, TypeVar

__all__ = ["Registry", "Option", "OptionError", "normalize_name", "did_you_mean", "coerce"]

T = TypeVar("T")
_EMPTY = inspect.Parameter.empty


class OptionError(ValueError):
    """An option is unknown or has a value of the wrong type; the message names it."""


def normalize_name(name: str) -> str:
    """Normalise a user-given component name: lower case, no ``-``, ``_`` or spaces.

    Examples
    --------
    >>> normalize_name("FB15k-237"), normalize_name("Trans_E")
    ('fb15k237', 'transe')
    """
    return re.sub(r"[\s_\-]+", "", name).lower()


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``.

    Examples
    --------
    >>> did_you_mean("keep_prop", ["keep_prob", "negative_label"])
    "; did you mean 'keep_prob'?"
    >>> did_you_mean("zzz", ["keep_prob"])
    ''
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class Option:
    """One settable constructor argument of a registered component.

    Attributes
    ----------
    name : str
        Keyword name.
    default : object
        Default value, or :data:`inspect.Parameter.empty` when the option is required.
    hint : object
        Type hint used to check and convert values (``int``, ``Optional[float]``, an enum, ...).
    """

    name: str
    default: Any
    hint: Any

    @property
    def required(self) -> bool:
        """Whether the option has no default."""
        return self.default is _EMPTY


def _hints(func: Callable) -> Dict[str, Any]:
    target = func.__init__ if inspect.isclass(func) else func
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return {}


def _describe(hint: Any) -> str:
    if hint in (int, float, bool, str):
        return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[hint]
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return "one of: " + ", ".join(str(e.value) for e in hint)
    return str(hint).replace("typing.", "")


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type ``hint`` and convert it (strings to enums, ints to floats).

    Floats must be finite, integers fit in 64 bits (what torch takes). Unknown hints accept the
    value as it is.

    Raises
    ------
    OptionError
        Naming ``where`` and what was expected.

    Examples
    --------
    >>> coerce(3, float, "lr"), coerce(None, Optional[int], "n"), coerce([1, "2"], Sequence[int], "f")
    (3.0, None, [1, 2])
    >>> coerce(float("nan"), float, "lr")
    Traceback (most recent call last):
    ...
    dgl_emu.registry.OptionError: lr: expected a finite number, got nan
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return coerce(value, inner[0], where)
        if float in inner:  # e.g. torch's ``lr: float | Tensor``: a number from a config
            return coerce(value, float, where)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip())):
                raise OptionError(f"{where}: expected an integer, got {value!r}")
            value = int(value)
        if not -2 ** 63 <= value < 2 ** 63:
            raise OptionError(f"{where}: must be a 64-bit integer, in [-2^63, 2^63 - 1], got {value}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise OptionError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(f"{where}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond the largest float
            raise OptionError(f"{where}: expected a finite number (at most about 1.8e308), got {value}") from None
        if not math.isfinite(value):
            raise OptionError(f"{where}: expected a finite number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise OptionError(f"{where}: expected a name, got {value!r}")
        return value
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        try:
            return hint(str(value).lower())
        except ValueError:
            raise OptionError(f"{where}: {value!r} is not {_describe(hint)}") from None
    if origin in (list, tuple, Sequence, typing.Sequence, __import__("collections.abc").abc.Sequence) and args:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise OptionError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == len(value) and Ellipsis not in args:
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        return [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class Registry(Generic[T]):
    """A mapping from normalised names to components of one family.

    Parameters
    ----------
    family : str
        What the registry holds, used in error messages (``"interaction"``).
    context : sequence of str
        Factory parameters the builder supplies (never user options), e.g. ``("kg", "seed")``.

    Examples
    --------
    >>> reg = Registry("colour", context=("seed",))
    >>> @reg.register("Dark-Red")
    ... class DarkRed:
    ...     def __init__(self, shade: int = 1, seed: int = 0):
    ...         self.shade, self.seed = shade, seed
    >>> reg.get("dark_red") is DarkRed
    True
    >>> [o.name for o in reg.options("dark-red").values()]
    ['shade']
    >>> c = reg.make("darkred", {"shade": 3}, {"seed": 7})
    >>> c.shade, c.seed
    (3, 7)
    >>> reg.make("darkred", {"shde": 3})
    Traceback (most recent call last):
    ...
    dgl_emu.registry.OptionError: shde: not an option of colour 'dark-red' (options: shade); did you mean 'shade'?
    >>> reg.get("blue")
    Traceback (most recent call last):
    ...
    KeyError: "unknown colour 'blue'; choose from: dark-red"
    """

    def __init__(self, family: str, *, context: Sequence[str] = ()):
        self.family = family
        self.context = tuple(context)
        self._items: Dict[str, T] = {}
        self._display: Dict[str, str] = {}
        self._exclude: Dict[str, tuple] = {}

    def register(self, name: str, *, exclude: Sequence[str] = ()) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``.

        ``exclude`` lists factory parameters that are not user options (implementation knobs).
        """

        def deco(obj: T) -> T:
            key = normalize_name(name)
            if key in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._items[key] = obj
            self._display[key] = name.lower()
            self._exclude[key] = tuple(exclude)
            return obj

        return deco

    def get(self, name: str) -> T:
        """Look a component up by (unnormalised) name; ``KeyError`` lists the choices."""
        key = normalize_name(str(name))
        if key not in self._items:
            raise KeyError(f"unknown {self.family} {name!r}; choose from: {', '.join(self.names())}"
                           f"{did_you_mean(str(name), self.names())}")
        return self._items[key]

    def canonical(self, name: str) -> str:
        """The display name under which ``name`` is registered."""
        self.get(name)
        return self._display[normalize_name(name)]

    def names(self) -> list:
        """Display names, in registration order."""
        return list(self._display.values())

    # ------------------------------------------------------------------ building
    def factory(self, name: str) -> Callable[..., T]:
        """What builds ``name``: its ``from_kg`` class method if it has one, else itself."""
        obj = self.get(name)
        return getattr(obj, "from_kg", obj)

    def options(self, name: str) -> Dict[str, Option]:
        """The user-settable options of ``name``, in signature order."""
        func = self.factory(name)
        hints = _hints(func)
        skip = set(self.context) | set(self._exclude[normalize_name(name)]) | {"self", "cls", "params"}
        out = {}
        for p in inspect.signature(func).parameters.values():
            if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = Option(p.name, p.default, hints.get(p.name, p.annotation))
        return out

    def check(self, name: str, options: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
        """Checked and converted ``options`` of ``name`` (unknown names raise with a suggestion)."""
        known = self.options(name)
        prefix = f"{where}." if where else ""
        out = {}
        for key, value in options.items():
            if key not in known:
                listed = ", ".join(known) or "none"
                raise OptionError(f"{prefix}{key}: not an option of {self.family} "
                                  f"{self.canonical(name)!r} (options: {listed}){did_you_mean(key, list(known))}")
            out[key] = coerce(value, known[key].hint, f"{prefix}{key}")
        return out

    def resolved(self, name: str, options: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
        """:meth:`check`-ed ``options`` completed with the defaults of every other option."""
        given = self.check(name, options, where)
        out = {}
        for key, opt in self.options(name).items():
            if key in given:
                out[key] = given[key]
            elif not opt.required:
                out[key] = opt.default.value if isinstance(opt.default, enum.Enum) else opt.default
        return out

    def make(self, name: str, options: Optional[Mapping[str, Any]] = None,
             context: Optional[Mapping[str, Any]] = None, where: str = "") -> T:
        """Build ``name`` from user ``options`` and builder ``context``.

        Context entries are passed only to factories that take them; a required option that is
        neither given nor in the context raises :class:`OptionError`.
        """
        kwargs = self.check(name, options or {}, where)
        func = self.factory(name)
        params = inspect.signature(func).parameters
        for key, value in (context or {}).items():
            if key in params and key not in kwargs:
                kwargs[key] = value
        missing = [k for k, o in self.options(name).items() if o.required and k not in kwargs]
        if missing:
            prefix = f"{where}." if where else ""
            raise OptionError(f"{prefix}{missing[0]}: required by {self.family} {self.canonical(name)!r}")
        return func(**kwargs)

    def __contains__(self, name: str) -> bool:
        return normalize_name(str(name)) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self.names())})"

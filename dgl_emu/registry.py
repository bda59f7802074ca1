"""Name registries for component families (datasets, samplers, interactions, ...)."""
from __future__ import annotations

import re
from typing import Callable, Dict, Generic, Iterator, TypeVar

__all__ = ["Registry", "normalize_name"]

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Normalise a user-given component name: lower case, no ``-``, ``_`` or spaces.

    Examples
    --------
    >>> normalize_name("FB15k-237"), normalize_name("Trans_E")
    ('fb15k237', 'transe')
    """
    return re.sub(r"[\s_\-]+", "", name).lower()


class Registry(Generic[T]):
    """A mapping from normalised names to components of one family.

    Parameters
    ----------
    family : str
        What the registry holds, used in error messages (``"interaction"``).

    Examples
    --------
    >>> reg = Registry("colour")
    >>> _ = reg.register("Dark-Red")(int)
    >>> reg.get("dark_red") is int
    True
    >>> reg.get("blue")
    Traceback (most recent call last):
    ...
    KeyError: "unknown colour 'blue'; choose from: dark-red"
    """

    def __init__(self, family: str):
        self.family = family
        self._items: Dict[str, T] = {}
        self._display: Dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``."""

        def deco(obj: T) -> T:
            key = normalize_name(name)
            if key in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._items[key] = obj
            self._display[key] = name.lower()
            return obj

        return deco

    def get(self, name: str) -> T:
        """Look a component up by (unnormalised) name; ``KeyError`` lists the choices."""
        key = normalize_name(name)
        if key not in self._items:
            raise KeyError(f"unknown {self.family} {name!r}; choose from: {', '.join(self.names())}")
        return self._items[key]

    def canonical(self, name: str) -> str:
        """The display name under which ``name`` is registered."""
        self.get(name)
        return self._display[normalize_name(name)]

    def names(self) -> list:
        """Display names, in registration order."""
        return list(self._display.values())

    def __contains__(self, name: str) -> bool:
        return normalize_name(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self.names())})"

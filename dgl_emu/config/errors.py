"""What every part of the configuration shares: a section's value and the error that names an option."""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

__all__ = ["ConfigError", "Component"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option and what is allowed.

    Attributes
    ----------
    path : str, optional
        Dotted path of the offending option (``"sampler.num_negatives"``), when there is one.
    """

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.path = path

    @classmethod
    def of_component(cls, section: str, options: Collection[str], error: Exception) -> "ConfigError":
        """The error of a component's constructor, naming the option its message starts with
        (``num_bases: ...``, ``num_bases must ...``) when that is one of ``options``, else the section.

        Examples
        --------
        >>> e = ConfigError.of_component("encoder", ["num_bases"], ValueError("num_bases must be positive"))
        >>> str(e), e.path
        ('encoder.num_bases: must be positive', 'encoder.num_bases')
        >>> e = ConfigError.of_component("encoder", ["num_bases"], ValueError("widths differ"))
        >>> str(e), e.path
        ('encoder: widths differ', 'encoder')
        """
        message = str(error.args[0] if error.args else error)
        named = re.match(r"(\w+)(?::\s*| (?=must ))", message)
        if named and named.group(1) in options:
            path = f"{section}.{named.group(1)}"
            return cls(f"{path}: {message[named.end():]}", path)
        return cls(f"{section}: {message}", section)


@dataclass
class Component:
    """One component section: a registered ``name`` and its ``options``."""

    name: Optional[str]
    options: Dict[str, Any] = field(default_factory=dict)

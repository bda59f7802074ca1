"""What every part of the configuration shares: a section's value and the error that names an option."""
from __future__ import annotations

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


@dataclass
class Component:
    """One component section: a registered ``name`` and its ``options``."""

    name: Optional[str]
    options: Dict[str, Any] = field(default_factory=dict)

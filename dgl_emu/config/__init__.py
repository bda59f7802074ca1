"""Run configuration: sections per component, flat aliases, checks against the registries.

See :class:`RunConfig`; :data:`ALIASES` lists the flat spellings (``num_negatives``) that YAML
files and ``dgl-emu run`` flags (``--num-negatives``) share.
"""
from .aliases import ALIASES, Alias, alias_of, flag_of
from .errors import Component, ConfigError
from .run_config import RunConfig, load_config, read_yaml
from .sections import CHOSEN_BY_DATA, COMPONENTS, NONE, PLAIN, TOP_LEVEL, ComponentSpec, same_setting

__all__ = ["RunConfig", "Component", "ConfigError", "load_config", "read_yaml", "ALIASES", "Alias", "alias_of",
           "flag_of", "COMPONENTS", "ComponentSpec", "PLAIN", "TOP_LEVEL", "NONE", "CHOSEN_BY_DATA", "same_setting"]

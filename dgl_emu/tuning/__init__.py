"""Hyper-parameter search on Optuna (``dgl-emu tune``).

:mod:`.space` holds the typed ranges and collects the search space that each component declares
next to itself; :mod:`.study` runs a resumable study (SQLite in the study directory, median
pruning on validation MRR, one run directory per trial); :mod:`.report` writes the trials table,
``best.yaml`` and the importance plot; :mod:`.compare` tunes EMU and its plain baseline with
equal budgets; a :class:`~dgl_emu.locking.DirectoryLock` keeps one tuner per study directory.

Only :mod:`.space` is imported here (components import it to declare their ranges); the study
modules import Optuna, so they are imported by name::

    from dgl_emu.tuning.study import tune
"""
from .space import (FIXED, Choice, FloatRange, IntRange, Param, apply_overrides, check_space, describe_space,
                    load_search_space, read_overrides, read_search_file, search_space, space_to_dict)

__all__ = ["FloatRange", "IntRange", "Choice", "Param", "search_space", "apply_overrides",
           "load_search_space", "read_search_file", "read_overrides", "check_space", "describe_space",
           "space_to_dict", "FIXED"]

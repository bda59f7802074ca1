"""Run directories that are never half old, half new.

A run directory holds one run: ``config.yaml`` (resolved), ``log.jsonl``, ``last.pt``,
``best.pt``, ``metrics.json`` and ``curve.png``. :class:`RunDirectory` decides what a new
invocation may do with an existing one:

* the same configuration resumes it (or re-evaluates a finished run);
* another configuration is refused, naming the options that differ, unless the directory holds
  no checkpoint yet (a run that failed before training leaves nothing that blocks its corrected
  re-run);
* ``fresh=True`` moves the old run aside to ``.<name>.previous`` beside it before anything is
  written, deletes that copy once the new run has written its first checkpoint, and moves it
  back if the new run stops before then.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Optional

import yaml

from ..config import ConfigError, RunConfig

__all__ = ["RunDirectory", "RUN_FILES", "config_differences"]

#: every file a run writes into its directory
RUN_FILES = ("config.yaml", "log.jsonl", "last.pt", "best.pt", "metrics.json", "curve.png")
#: files whose presence means the directory holds results worth protecting
CHECKPOINTS = ("last.pt", "best.pt", "metrics.json")


def config_differences(saved: dict, cfg: RunConfig) -> List[str]:
    """``"path: old -> new"`` for every option where ``saved`` and ``cfg`` differ (progress bars and
    the output path aside: a run directory may be moved).

    ``saved`` may be a nested or a dgl-emu 0.1 flat configuration; one that cannot be read is
    reported as such.
    """
    try:
        old = RunConfig.from_dict(saved).flat()
    except ConfigError as e:
        return [f"config.yaml cannot be read ({e})"]
    new = cfg.flat()
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in ("progress", "output") and old.get(k) != new.get(k)]


class RunDirectory:
    """The lifecycle of one run directory (see the module docstring).

    Parameters
    ----------
    path : path-like
        The run directory (``--output``).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.previous: Optional[Path] = None

    @property
    def aside(self) -> Path:
        """Where ``fresh`` keeps the old run until the new one has a checkpoint."""
        return self.path.parent / f".{self.path.name}.previous"

    def has_checkpoint(self) -> bool:
        """Whether the directory holds a checkpoint or final metrics."""
        return any((self.path / f).exists() for f in CHECKPOINTS)

    def check(self, cfg: RunConfig, *, fresh: bool) -> str:
        """What :meth:`prepare` will do, decided without writing anything.

        Returns ``"aside"`` (fresh: move the old run aside), ``"clear"`` (another configuration
        but no checkpoint: remove the stale files), ``"resume"`` (the same run) or ``"new"``.

        Raises
        ------
        ConfigError
            (``output``) if the path is not a directory, or holds a run with another
            configuration and a checkpoint (the differing options named).
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output: {self.path} exists and is not a directory", "output")
        if not self.path.exists():
            return "new"
        if fresh:
            return "aside" if any(self.path.iterdir()) else "new"
        config = self.path / "config.yaml"
        if not config.exists():
            return "resume" if self.has_checkpoint() else "new"
        try:
            saved = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            saved = {"(unreadable)": str(e)}
        diff = config_differences(saved if isinstance(saved, dict) else {}, cfg)
        if not diff:
            return "resume"
        if self.has_checkpoint():
            shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
            raise ConfigError(f"output: {self.path} holds a run with another configuration ({shown}); "
                              f"choose another --output or pass --fresh", "output")
        return "clear"  # a run that stopped before its first checkpoint: nothing to protect

    def prepare(self, action: str) -> None:
        """Carry out :meth:`check`'s ``action`` and make sure the directory is writable.

        Raises
        ------
        ConfigError
            (``output``) if the directory cannot be created or written.
        """
        if action == "aside":
            self._move_aside()
        elif action == "clear":
            self._clear()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"output: cannot create {self.path} ({e.strerror or e})", "output") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(f"output: {self.path} is not writable", "output")

    def _clear(self) -> None:
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def _move_aside(self) -> None:
        if self.aside.exists():
            shutil.rmtree(self.aside)
        try:
            self.path.rename(self.aside)
        except OSError as e:
            raise ConfigError(f"output: cannot move the previous run in {self.path} aside ({e.strerror or e})",
                              "output") from None
        self.previous = self.aside

    def checkpoint_written(self) -> None:
        """The new run has its first checkpoint: the previous run is no longer needed."""
        if self.previous is not None and self.previous.exists():
            shutil.rmtree(self.previous, ignore_errors=True)
        self.previous = None

    def restore_previous(self) -> Optional[Path]:
        """Put the previous run back (the new one stopped before its first checkpoint)."""
        if self.previous is None or not self.previous.exists():
            return None
        shutil.rmtree(self.path, ignore_errors=True)
        self.previous.rename(self.path)
        self.previous = None
        return self.path

"""Run directories that belong to dgl-emu and are never half old, half new.

A run directory holds one run: the marker :data:`MARKER` (written when dgl-emu creates or adopts
the directory), ``config.yaml`` (resolved), the record of its data (``data.json``,
``entities.dict``, ``relations.dict``: :mod:`.datarecord`), ``log.jsonl``, ``last.pt``,
``best.pt`` (with ``last.shards/`` and ``best.shards/`` when the run's tables are sharded:
:mod:`dgl_emu.training.shardset`), ``metrics.json``, ``curve.png`` and, after ``dgl-emu
evaluate``, ``eval-SPLIT.json``.
:class:`RunDirectory` decides what a new invocation may do with an existing one:

* dgl-emu writes only into a directory it owns: a new or empty one, one with its marker, or one
  written by a dgl-emu from before the marker (a readable ``config.yaml``, a checkpoint or
  metrics, and nothing but run files), which it adopts. Any other directory is refused, with or
  without ``fresh``, naming it: dgl-emu never deletes or overwrites what it did not write.
* it deletes and overwrites only its own files (:func:`owned`), and writes none through a
  symbolic link: a link in the place of one of its files is refused, and every file is written
  to a new temporary file that then replaces it (:func:`dgl_emu.utils.atomic_write_bytes`).
* one run at a time: the run holds the lock :data:`LOCK` (:class:`~dgl_emu.locking.DirectoryLock`,
  its holder's PID and start time, taken over when that process is gone); a second run on the
  same directory fails at once, naming the holder.
* the same configuration resumes it (or re-evaluates a finished run);
* another configuration is refused, naming the options that differ, unless the directory holds
  no checkpoint yet (a run that failed before training leaves nothing that blocks its corrected
  re-run);
* ``fresh=True`` moves the old run aside to ``.<name>.previous`` beside it before anything is
  written, deletes that copy once the new run has written its first checkpoint, and puts it back
  if the new run stops before then, whatever stopped it (an error, a full disk, a signal). A
  ``.<name>.previous`` that dgl-emu did not write is refused, never deleted; one left by a run
  that was killed before its first checkpoint is still the previous run, and is kept as such.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import List, Optional

import psutil
import yaml

from ..config import ConfigError, RunConfig, same_setting
from ..locking import DirectoryLock, Locked, holder
from ..training.shardset import remove_shard_folder
from ..utils import atomic_write_text

__all__ = ["RunDirectory", "RUN_FILES", "MARKER", "LOCK", "owned", "config_differences"]

#: the file that says a directory is a dgl-emu run directory (written at creation)
MARKER = ".dgl-emu-run"
#: the lock file of the run that writes the directory
LOCK = ".dgl-emu.lock"
#: every file a run writes into its directory
RUN_FILES = ("config.yaml", "data.json", "entities.dict", "relations.dict", "log.jsonl", "last.pt", "best.pt",
             "metrics.json", "curve.png")
#: files whose presence means the directory holds results worth protecting
CHECKPOINTS = ("last.pt", "best.pt", "metrics.json")
#: lock files: a run's, and the benchmark grid runner's (``benchmarks/gridlib``), never removed by a run
LOCKS = (LOCK, ".grid.lock")
#: the shard sets of the checkpoints of a run whose tables are sharded (removed file by file)
SHARD_FOLDERS = ("last.shards", "best.shards")
_OTHER_OWNED = (MARKER, *LOCKS, *SHARD_FOLDERS, "tensorboard", "eval-train.json", "eval-valid.json",
                "eval-test.json", "error.txt")  # error.txt: the benchmark grid's record of a failed run
#: a temporary file of an atomic write (``.<name>.<random>``), left by a process that was killed
_TEMPORARY = re.compile(r"\.(?P<name>[\w.-]+?)\.[\w]{6,}")


def owned(name: str) -> bool:
    """Whether an entry named ``name`` in a run directory is one that dgl-emu writes.

    Examples
    --------
    >>> owned("last.pt"), owned(".last.pt.k3j9_x2a"), owned("eval-test.json"), owned("notes.txt")
    (True, True, True, False)
    """
    if name in RUN_FILES or name in _OTHER_OWNED:
        return True
    match = _TEMPORARY.fullmatch(name)
    return bool(match) and (match["name"] in RUN_FILES or match["name"] in _OTHER_OWNED)


#: options a resumed run may change: they change no number of the run (the output path: a run
#: directory may be moved)
NOT_COMPARED = ("progress", "output", "training.checkpoint_every_seconds")


def config_differences(saved: dict, cfg: RunConfig) -> List[str]:
    """``"path: old -> new"`` for every option where ``saved`` and ``cfg`` differ, but those of
    :data:`NOT_COMPARED` (progress bars, the output path, how often to checkpoint); an option
    left to the data (``null``) matches the choice a run recorded
    (:func:`~dgl_emu.config.same_setting`).

    ``saved`` may be a nested or a dgl-emu 0.1 flat configuration; one that cannot be read is
    reported as such.
    """
    try:
        old = RunConfig.from_dict(saved).flat()
    except ConfigError as e:
        return [f"config.yaml cannot be read ({e})"]
    new = cfg.flat()
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if k not in NOT_COMPARED and not same_setting(k, old.get(k), new.get(k))]


def _shown(names: List[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _holder_text(pid: int) -> str:
    """``process 1234 (dgl-emu run --seed 5 ...)``: the lock's holder, with its command if visible."""
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:  # gone, or another user's: the PID alone
        return f"process {pid}"
    return f"process {pid} ({command[:100]}{'...' if len(command) > 100 else ''})"


class RunDirectoryInUse(ConfigError):
    """Another live process holds the run directory's lock."""


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
        self._lock: Optional[DirectoryLock] = None

    @property
    def aside(self) -> Path:
        """Where ``fresh`` keeps the old run until the new one has a checkpoint."""
        return self.path.parent / f".{self.path.name}.previous"

    def has_checkpoint(self, path: Optional[Path] = None) -> bool:
        """Whether the directory holds a checkpoint or final metrics."""
        return any(((path or self.path) / f).exists() for f in CHECKPOINTS)

    # ------------------------------------------------------------------ what is in the directory
    def _ownership(self, path: Path) -> str:
        """``"marked"``, ``"empty"``, ``"legacy"`` (an older dgl-emu's run), or ``"foreign"``."""
        names = [p.name for p in path.iterdir()]
        if MARKER in names and not (path / MARKER).is_symlink():
            return "marked"
        if not [n for n in names if n not in LOCKS]:
            return "empty"
        if all(owned(n) for n in names) and self.has_checkpoint(path) and self._readable_config(path):
            return "legacy"
        return "foreign"

    @staticmethod
    def _readable_config(path: Path) -> bool:
        try:
            saved = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
            RunConfig.from_dict(saved)
        except Exception:  # not YAML, not a configuration, not there
            return False
        return True

    def _refuse_foreign(self, path: Path, fresh: bool) -> None:
        foreign = [p.name for p in path.iterdir() if not owned(p.name)]
        what = f"it holds {_shown(foreign)}" if foreign else "it holds no dgl-emu configuration or checkpoint"
        raise ConfigError(f"output: {path} is not a dgl-emu run directory ({what}, and no {MARKER} marker); "
                          f"dgl-emu {'deletes' if fresh else 'writes'} only its own run directories: choose a "
                          f"new or empty --output", "output")

    def _refuse_links(self) -> None:
        for entry in self.path.iterdir():
            if owned(entry.name) and entry.is_symlink():
                raise ConfigError(f"output: {entry} is a symbolic link; dgl-emu writes no file through a "
                                  f"link (remove it)", "output")

    def _check_lock(self) -> None:
        pid = holder(self.path / LOCK)
        if pid is not None and pid != os.getpid():
            raise RunDirectoryInUse(f"output: {self.path} is in use by {_holder_text(pid)}; wait for it to "
                                    f"end or choose another --output", "output")

    def _aside_state(self) -> str:
        """``"none"``, ``"ours"`` (a previous run dgl-emu moved aside) or ``"foreign"``."""
        if not os.path.lexists(self.aside):
            return "none"
        if self.aside.is_dir() and not self.aside.is_symlink() and self._ownership(self.aside) != "foreign":
            return "ours"
        return "foreign"

    # ------------------------------------------------------------------ decisions
    def check(self, cfg: RunConfig, *, fresh: bool) -> str:
        """What :meth:`prepare` will do, decided without writing anything.

        Returns ``"aside"`` (fresh: move the old run aside), ``"clear"`` (another configuration
        but no checkpoint: remove the stale files), ``"resume"`` (the same run) or ``"new"``.
        A previous run that a ``fresh`` run killed before its first checkpoint left aside is
        kept as the previous run (:attr:`previous`).

        Raises
        ------
        ConfigError
            (``output``) if the path is not a directory, is not dgl-emu's, is in use by another
            run (:class:`RunDirectoryInUse`), holds a symbolic link in the place of a run file, or
            holds a run with another configuration and a checkpoint (the differing options named).
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output: {self.path} exists and is not a directory", "output")
        self.previous = None
        aside = self._aside_state()
        if aside == "foreign" and fresh:
            raise ConfigError(f"output: {self.aside} is not a dgl-emu run directory; --fresh keeps the previous "
                              f"run of {self.path} there: move it away", "output")
        pending = aside == "ours"
        if not self.path.exists():
            self.previous = self.aside if pending else None
            return "new"
        self._check_lock()
        ownership = self._ownership(self.path)
        if ownership == "foreign":
            self._refuse_foreign(self.path, fresh)
        self._refuse_links()
        if pending and not self.has_checkpoint():  # the run aside is still the previous one
            self.previous = self.aside
            return "clear"
        if fresh:
            if ownership == "empty":
                return "new"
            foreign = [p.name for p in self.path.iterdir() if not owned(p.name)]
            if foreign:
                raise ConfigError(f"output: {self.path} holds files dgl-emu did not write ({_shown(foreign)}); "
                                  f"--fresh would delete them: move them away first", "output")
            return "aside"
        config = self.path / "config.yaml"
        if not config.exists():
            return "resume" if self.has_checkpoint() else "new"
        try:
            saved = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            saved = {"(unreadable)": str(e)}
        diff = config_differences(saved if isinstance(saved, dict) else {}, cfg)
        if not diff:
            return "resume"
        if self.has_checkpoint():
            shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
            raise ConfigError(f"output: {self.path} holds a run with another configuration ({shown}); "
                              f"choose another --output or pass --fresh", "output")
        return "clear"  # a run that stopped before its first checkpoint: nothing to protect

    def prepare(self, cfg: RunConfig, *, fresh: bool) -> str:
        """Take the directory: create or adopt it, lock it, decide again under the lock
        (:meth:`check`) and carry out the decision. Release it with :meth:`release`.

        Returns
        -------
        str
            The action taken (see :meth:`check`).

        Raises
        ------
        ConfigError
            (``output``) as :meth:`check`, or if the directory cannot be created or written.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"output: cannot create {self.path} ({e.strerror or e})", "output") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(f"output: {self.path} is not writable", "output")
        self._take_lock(self.path)
        try:
            action = self.check(cfg, fresh=fresh)
            if action == "aside":
                self._move_aside()
            elif action == "clear":
                self._clear(self.path)
            self._mark(self.path)
        except BaseException:
            self.release()
            raise
        return action

    def _take_lock(self, path: Path) -> None:
        lock = DirectoryLock(path / LOCK, message="{directory}", error=Locked)
        try:
            lock.acquire()
        except Locked as e:
            raise RunDirectoryInUse(f"output: {path} is in use by {_holder_text(e.pid)}; wait for it to end or "
                                    f"choose another --output", "output") from None
        except OSError as e:
            raise ConfigError(f"output: cannot lock {path} ({e.strerror or e})", "output") from None
        self._lock = lock

    def release(self) -> None:
        """Release the lock (when this process holds it)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @staticmethod
    def _mark(path: Path) -> None:
        if not (path / MARKER).exists():
            atomic_write_text(path / MARKER, json.dumps({"written_by": "dgl-emu", "format": 1}) + "\n")

    @staticmethod
    def _clear(path: Path) -> None:
        """Remove dgl-emu's run files from ``path`` (marker and locks stay)."""
        for entry in path.iterdir():
            if owned(entry.name) and entry.name != MARKER and entry.name not in LOCKS:
                if entry.name in SHARD_FOLDERS and entry.is_dir() and not entry.is_symlink():
                    remove_shard_folder(entry)  # only the files dgl-emu wrote
                elif entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    @classmethod
    def _remove(cls, path: Path) -> bool:
        """Remove dgl-emu's files from ``path``, then ``path`` itself when nothing else is left;
        returns whether it is gone."""
        cls._clear(path)
        (path / MARKER).unlink(missing_ok=True)
        for name in LOCKS:
            if holder(path / name) is None:  # a live process's lock stays (and so does the directory)
                (path / name).unlink(missing_ok=True)
        try:
            path.rmdir()
        except OSError:  # something dgl-emu did not write is in it: left alone
            return False
        return True

    def _move_aside(self) -> None:
        if self.aside.exists():  # ours (checked): a copy whose deletion was interrupted
            if not self._remove(self.aside):
                raise ConfigError(f"output: {self.aside} holds files dgl-emu did not write; --fresh keeps the "
                                  f"previous run there: move it away", "output")
        self._mark(self.path)
        try:
            self.path.rename(self.aside)
        except OSError as e:
            raise ConfigError(f"output: cannot move the previous run in {self.path} aside ({e.strerror or e})",
                              "output") from None
        self.previous = self.aside
        (self.aside / LOCK).unlink(missing_ok=True)  # the lock moved with it: this process held it
        self._lock = None
        try:
            self.path.mkdir()
        except OSError as e:  # another process created it meanwhile
            raise ConfigError(f"output: cannot create {self.path} again ({e.strerror or e}); the previous run "
                              f"is kept in {self.aside}", "output") from None
        self._take_lock(self.path)

    def checkpoint_written(self) -> None:
        """The new run has its first checkpoint: the previous run is no longer needed."""
        if self.previous is not None and self.previous.exists():
            self._remove(self.previous)
        self.previous = None

    def restore_previous(self) -> Optional[Path]:
        """Put the previous run back (the new one stopped before its first checkpoint); returns
        the run directory, or ``None`` when there was nothing to put back (or something that
        dgl-emu did not write was put in the new run's directory meanwhile: then the previous
        run stays aside)."""
        if self.previous is None or not self.previous.exists():
            return None
        self.release()
        if self.path.exists() and not self._remove(self.path):
            return None
        self.previous.rename(self.path)
        self.previous = None
        return self.path

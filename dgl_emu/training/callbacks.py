"""Trainer callbacks: early stopping and per-step logs (JSON lines, TensorBoard if installed)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Protocol, Union

from ..utils import atomic_write_text, open_append

__all__ = ["Callback", "EarlyStopping", "JsonLinesLogger", "TensorBoardLogger", "TrainerView", "strict_json"]


class TrainerView(Protocol):
    """What callbacks see of a :class:`~dgl_emu.training.Trainer` (no import of it: no cycle)."""

    step: int

    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the current step."""


class Callback:
    """Hooks called by :class:`~dgl_emu.training.Trainer`; override what you need."""

    def on_fit_start(self, trainer: "TrainerView") -> None:
        """Before the first step (also after a resume)."""

    def on_step_end(self, trainer: "TrainerView", record: dict) -> None:
        """After each optimiser step; ``record`` holds ``step``, ``loss``, ``lr``, ``seconds``."""

    def on_validation_end(self, trainer: "TrainerView", metric: float, improved: bool) -> None:
        """After each validation with its headline metric."""

    def on_checkpoint(self, trainer: "TrainerView") -> None:
        """After a resumable checkpoint was written."""

    def on_fit_end(self, trainer: "TrainerView") -> None:
        """After the last step."""

    def state_dict(self) -> dict:
        """State to store in checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


class EarlyStopping(Callback):
    """Stop when the validation metric has not improved for ``patience`` validations.

    Parameters
    ----------
    patience : int
        Validations without improvement before stopping.
    """

    def __init__(self, patience: int = 5):
        if patience < 1:
            raise ValueError("patience must be positive")
        self.patience = patience
        self.bad = 0

    def on_fit_start(self, trainer):
        # a resumed run that early stopping had already ended stays ended
        if self.bad >= self.patience:
            trainer.stop(self._reason())

    def on_validation_end(self, trainer, metric, improved):
        self.bad = 0 if improved else self.bad + 1
        if self.bad >= self.patience:
            trainer.stop(self._reason())

    def _reason(self) -> str:
        return f"early stopping: no improvement in {self.patience} validations"

    def state_dict(self):
        return {"bad": self.bad}

    def load_state_dict(self, state):
        self.bad = state["bad"]


def strict_json(record: dict) -> str:
    """``record`` as strict JSON: a non-finite float becomes ``null`` and its key is listed under
    ``"nonfinite"`` (``NaN`` and ``Infinity`` are not JSON).

    Examples
    --------
    >>> strict_json({"step": 3, "loss": float("nan")})
    '{"step": 3, "loss": null, "nonfinite": ["loss"]}'
    """
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        record = {**{k: (None if k in bad else v) for k, v in record.items()}, "nonfinite": bad}
    return json.dumps(record, allow_nan=False)


class JsonLinesLogger(Callback):
    """Append one JSON object per step (and per validation) to ``path``, in strict JSON.

    On resume the file is cut back to the checkpoint's step, so it never holds steps twice. The
    file is written without following a symbolic link (a link at ``path`` is replaced).
    Each line is handed to the operating system as its step or validation ends (one ``write``
    per line, no buffering in the process), so the file can be followed while the run goes on
    (``tail -f``), with or without a progress bar, and a process killed outright loses no line
    of a finished step.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self._file = None

    def on_fit_start(self, trainer):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.path.exists() and not self.path.is_symlink() and trainer.step > 0:
            for line in self.path.read_text().splitlines():
                try:
                    step = json.loads(line)["step"] if line.strip() else None
                except json.JSONDecodeError:  # a line cut short by a kill (after the checkpoint)
                    break
                if step is not None and step <= trainer.step:
                    kept.append(line)
        atomic_write_text(self.path, "".join(f"{x}\n" for x in kept))  # never through a link
        self._file = open_append(self.path)

    def _write(self, record: dict) -> None:
        self._file.write(strict_json(record) + "\n")
        self._file.flush()  # as the step ends: the file can be followed, a kill loses no line

    def on_step_end(self, trainer, record):
        self._write(record)

    def on_validation_end(self, trainer, metric, improved):
        self._write({"step": trainer.step, "valid_mrr": metric})

    def on_fit_end(self, trainer):
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoardLogger(Callback):
    """Scalars to TensorBoard; a no-op when ``tensorboard`` is not installed."""

    def __init__(self, log_dir: Union[str, Path]):
        self.writer: Optional[object] = None
        try:
            from torch.utils.tensorboard import SummaryWriter  # start-up cost; optional (tensorboard)
            self.writer = SummaryWriter(str(log_dir))
        except (ImportError, ModuleNotFoundError):
            self.writer = None

    def on_step_end(self, trainer, record):
        if self.writer is not None:
            self.writer.add_scalar("train/loss", record["loss"], record["step"])

    def on_validation_end(self, trainer, metric, improved):
        if self.writer is not None:
            self.writer.add_scalar("valid/mrr", metric, trainer.step)

    def on_fit_end(self, trainer):
        if self.writer is not None:
            self.writer.flush()

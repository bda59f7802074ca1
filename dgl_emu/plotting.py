"""Training-curve plots (matplotlib, headless)."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional, Union

from .utils import atomic_write_bytes

__all__ = ["plot_training_curve"]


def plot_training_curve(log_path: Union[str, Path], out_path: Union[str, Path],
                        title: Optional[str] = None, window: int = 50) -> Path:
    """Plot the training loss (moving average over ``window`` steps) and validation MRR.

    Parameters
    ----------
    log_path : path-like
        A ``log.jsonl`` written by :class:`~dgl_emu.training.JsonLinesLogger`.
    out_path : path-like
        PNG to write (atomically).
    title : str, optional
        Figure title.
    window : int
        Moving-average window of the loss.

    Returns
    -------
    Path
        ``out_path``.
    """
    import matplotlib  # start-up cost: matplotlib (0.3 s), imported when a curve is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # start-up cost, as above

    steps, losses, vsteps, mrr = [], [], [], []
    for line in Path(log_path).read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            steps.append(rec["step"])
            losses.append(rec["loss"])
        if "valid_mrr" in rec:
            vsteps.append(rec["step"])
            mrr.append(rec["valid_mrr"])
    smooth = []
    acc = 0.0
    for i, x in enumerate(losses):
        acc += x - (losses[i - window] if i >= window else 0.0)
        smooth.append(acc / min(i + 1, window))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, smooth, color="tab:blue", label=f"train loss ({window}-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if vsteps:
        ax2 = ax.twinx()
        ax2.plot(vsteps, mrr, "o-", color="tab:red", label="valid MRR (realistic)")
        ax2.set_ylabel("validation MRR", color="tab:red")
    ax.set_title(title or "training curve")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_path, buf.getvalue())
    return Path(out_path)

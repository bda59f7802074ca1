"""The ``dgl-emu`` command line: ``run``, ``tune``, ``partition``, ``evaluate``, ``predict``, ``export``, ``datasets``,
``components``.

Modules named in the ``DGL_EMU_PLUGINS`` environment variable (comma-separated) are imported
first, so components they register appear in the choices and help of every command.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import warnings

import click

# torch's row-wise Adagrad (sparse training) builds sparse tensors without invariant checks and
# says so at every step; it is not something a user can act on
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


def _load_plugins() -> None:
    for name in filter(None, (m.strip() for m in os.environ.get("DGL_EMU_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            sys.exit(f"Error: DGL_EMU_PLUGINS: cannot import {name!r} ({e})")


_load_plugins()

from ..launching import Terminated, raise_terminated, report, reporting  # noqa: E402
from .datasets import datasets  # noqa: E402  (after the plugins: options are built at import)
from .export import export  # noqa: E402
from .inspect import components, evaluate, format_metrics_table, predict  # noqa: E402
from .partition import partition  # noqa: E402
from .run import run  # noqa: E402
from .tune import tune  # noqa: E402

__all__ = ["main", "format_metrics_table"]


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class _Commands(click.Group):
    """Every failure ends in one ``Error: ...`` line and an exit status (2 usage, 1 runtime, 130
    interrupted, 143 terminated); a traceback only with ``--debug`` (or ``DGL_EMU_DEBUG=1``).

    SIGTERM stops a command as Ctrl-C does (:class:`~dgl_emu.launching.Terminated`). A process
    that a launcher started (:func:`~dgl_emu.launching.reporting`) gives its error line to the
    launcher, which prints one line for all of its processes."""

    def invoke(self, ctx: click.Context):
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, raise_terminated)
        try:
            return self._invoke(ctx)
        except click.exceptions.ClickException as e:
            if reporting():  # its launcher prints the line; and a sharded trainer's exit through
                report("error", e.format_message())  # DGL's client would wait for the other trainers
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(e.exit_code)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as e:
            terminated = isinstance(e, Terminated)
            line = "Terminated." if terminated else "Interrupted."
            if not report("stopped", line):
                click.echo(line, err=True)
            ctx.exit(143 if terminated else 130)
        except Exception as e:  # anything not mapped by a command: one line, no traceback
            if ctx.params.get("debug") or os.environ.get("DGL_EMU_DEBUG") == "1":
                raise
            name = "" if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: "
            raise click.ClickException(f"{name}{_one_line(e)} (run with --debug for the traceback)") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks of errors.")
@click.version_option(package_name="dgl-emu")
def main(debug):
    """dgl-emu: Embedding MUtation (EMU) for knowledge-graph link prediction on DGL."""


for _command in (run, tune, partition, evaluate, predict, export, datasets, components):
    main.add_command(_command)

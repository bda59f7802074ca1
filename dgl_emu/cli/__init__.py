"""The ``dgl-emu`` command line: ``run``, ``tune``, ``partition``, ``evaluate``, ``predict``, ``export``, ``datasets``,
``components``.

Modules named in the ``DGL_EMU_PLUGINS`` environment variable (comma-separated) are imported
first, so components they register appear in the choices and help of every command.
"""
from __future__ import annotations

import importlib
import os
import sys
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

from ..sharded.placement import in_trainer  # noqa: E402
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
    interrupted); a traceback only with ``--debug`` (or ``DGL_EMU_DEBUG=1``)."""

    def invoke(self, ctx: click.Context):
        try:
            return self._invoke(ctx)
        except click.exceptions.ClickException as e:
            if in_trainer():  # a sharded trainer: DGL's client exit would wait
                e.show()                                # for the other trainers; its launcher ends them
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(e.exit_code)
            raise

    def _invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
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

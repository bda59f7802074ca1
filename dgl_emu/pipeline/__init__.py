"""The pipeline: a :class:`~dgl_emu.config.RunConfig` built into components, trained, evaluated, saved.

:mod:`.builders` turns each configuration section into its component, :mod:`.placement` is the
seam that says where a run lives (one process here; data-parallel and sharded placements live in
:mod:`dgl_emu.data_parallel` and :mod:`dgl_emu.sharded`), :mod:`.rundir` keeps run directories
consistent and dgl-emu's own, :mod:`.datarecord` records the data a run trained on, :mod:`.memory`
checks that a run fits, :mod:`.choices` records what a run chose from its data (sparse tables),
:mod:`.evaluate` ranks a split and :mod:`.run` trains, evaluates and writes a run.
"""
from .builders import (SEED_OFFSETS, build_batches, build_interaction, build_model, build_objective, build_regime,
                       build_sampler, build_schedule, default_output, device_of, load_graph, training_graph)
from .evaluate import evaluate
from .placement import Placement
from .run import RunDiverged, RunInterrupted, RunResult, RunWriteError, load_run, run
from .rundir import RunDirectory
from .setup import Setup
from .trained import TrainedRun, export_run

__all__ = ["load_graph", "build_interaction", "build_model", "build_sampler", "build_regime", "build_objective",
           "build_schedule", "build_batches", "training_graph", "device_of", "default_output",
           "SEED_OFFSETS", "evaluate", "run", "RunResult", "RunInterrupted", "RunDiverged", "RunWriteError",
           "load_run", "RunDirectory", "Placement", "Setup", "TrainedRun", "export_run"]

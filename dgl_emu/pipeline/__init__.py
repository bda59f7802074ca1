"""The pipeline: a :class:`~dgl_emu.config.RunConfig` built into components, trained, evaluated, saved.

:mod:`.builders` turns each configuration section into its component, :mod:`.rundir` keeps run
directories consistent, and :mod:`.run` trains, evaluates and writes a run.
"""
from .builders import (SEED_OFFSETS, build_batches, build_interaction, build_model, build_objective,
                       build_sampler, build_schedule, default_output, device_of, load_graph, training_graph)
from .run import RunDiverged, RunInterrupted, RunResult, evaluate, load_run, run
from .rundir import RunDirectory

__all__ = ["load_graph", "build_interaction", "build_model", "build_sampler", "build_objective",
           "build_schedule", "build_batches", "training_graph", "device_of", "default_output",
           "SEED_OFFSETS", "evaluate", "run", "RunResult", "RunInterrupted", "RunDiverged", "load_run",
           "RunDirectory"]

"""dgl-emu's benchmarks: one command, ``python -m benchmarks <subcommand>``, run from the repository root.

Subcommands (:mod:`benchmarks.cli`): ``grid`` trains a grid of runs, ``aggregate`` turns its
results into tables and plots, ``controls`` the controls table, ``tuned`` tunes and retrains the
cells of a spec, ``quality`` trains a quick EMU/baseline pair and ``report`` tabulates those pairs,
``speed`` times the library, ``equivalence`` records metrics and loss traces of fixed runs to
compare two versions of the code.

The libraries are subpackages: :mod:`benchmarks.gridlib` (grid files, run state, the training
loop), :mod:`benchmarks.agglib` (records, statistics, tables, plots), :mod:`benchmarks.tunedlib`
(tuned cells), :mod:`benchmarks.speedlib` (speed reports and the scale benchmark's processes);
the click commands are in :mod:`benchmarks.commands`. Nothing is imported here, so a worker
process (``python -m benchmarks.speedlib.scale``) loads only what it measures.
"""

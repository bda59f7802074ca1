"""Tuned cells: the spec file (:mod:`.spec`) and the tuning and retraining loop (:mod:`.runner`);
their summary is :mod:`benchmarks.agglib.tuned`."""

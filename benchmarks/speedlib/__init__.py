"""The speed benchmarks' library: reporting (:mod:`.report`), the ``scale`` subcommand (:mod:`.command`)
and its measurements, each in its own process (:mod:`.scale`)."""

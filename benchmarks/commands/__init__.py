"""The subcommands of ``python -m benchmarks``, one module each; their libraries are the ``*lib`` packages."""

"""Parts of ``benchmarks/speed.py`` that run in their own processes (peak memory per setting)."""

"""``python -m benchmarks``: the benchmarks' command line (:mod:`benchmarks.cli`)."""
from .cli import main

if __name__ == "__main__":
    main()

"""A server of DGL's distributed key-value store: ``python -m dgl_emu.sharded.server``.

Started by :func:`dgl_emu.sharded.launch.launch` with ``DGL_ROLE=server`` and DGL's server
environment; it serves its partition's entity rows (and optimiser state) until every trainer
has disconnected. Importing :mod:`dgl_emu` first lets it unpickle the initialisers the trainers
send (:func:`dgl_emu.sharded.encoder.zeros_init`).
"""
from __future__ import annotations

import os

import dgl

from . import encoder  # noqa: F401  (the trainers' init functions are unpickled here)


def main() -> None:
    """Serve until the trainers are done (DGL exits the process)."""
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])


if __name__ == "__main__":
    main()

"""``python -m dgl_emu`` is the ``dgl-emu`` command."""
from .cli import main

main()

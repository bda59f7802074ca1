"""Sphinx configuration of the dgl-emu documentation.

Build (warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Nothing here reaches the network: no intersphinx, no remote images.
"""
from __future__ import annotations

import os
import sys

# the package is normally installed (editable); fall back to the checkout for a bare build
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DGLBACKEND", "pytorch")

import dgl_emu  # noqa: E402

project = "dgl-emu"
author = "dgl-emu developers"
copyright = "2025, dgl-emu developers"
version = dgl_emu.__version__
release = dgl_emu.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_click",
]

templates_path: list = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "import_graph.py"]
root_doc = "index"
source_suffix = {".rst": "restructuredtext"}

# ---------------------------------------------------------------- autodoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"            # types are stated in the numpydoc "Parameters" sections
autodoc_default_options = {"show-inheritance": True}
# no torch docstrings on overridden methods (``forward`` would read "Define the computation...")
autodoc_inherit_docstrings = False
autoclass_content = "class"

# ---------------------------------------------------------------- numpydoc
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()

nitpicky = False

# ---------------------------------------------------------------- HTML
html_theme = "alabaster"
html_title = f"dgl-emu {release}"
html_static_path: list = []
html_theme_options = {
    "description": "Embedding MUtation (EMU) for knowledge-graph link prediction on DGL",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
pygments_style = "sphinx"


# ---------------------------------------------------------------- helpers
def _drop_default_reprs(app, doctree):
    """Hide values of module-level data whose repr is a default ``<... object at ...>``.

    Registries and dicts of builders document themselves in their docstrings; a memory-address
    repr tells a reader nothing (``automodule`` has no ``no-value`` option in Sphinx 9).
    """
    from sphinx import addnodes

    for sig in doctree.findall(addnodes.desc_signature):
        for ann in list(sig.findall(addnodes.desc_annotation)):
            text = ann.astext().strip()
            if text.startswith("=") and "<" in text and ">" in text:
                ann.parent.remove(ann)


def _draw_import_graph(app):
    """The architecture page's picture of the import graph, drawn from the code at each build."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from import_graph import draw

    draw(os.path.join(app.srcdir, "_generated", "import_graph.png"))


def setup(app):
    app.connect("builder-inited", _draw_import_graph)
    app.connect("doctree-read", _drop_default_reprs)
    return {"parallel_read_safe": True}

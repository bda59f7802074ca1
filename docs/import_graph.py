"""Draw dgl_emu's import graph by floors (the layers of ``.importlinter``) as a PNG.

``python docs/import_graph.py OUT.png``; the Sphinx build calls :func:`draw` (``docs/conf.py``),
so the picture in the architecture page is always the code's.
"""
from __future__ import annotations

import configparser
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]


def floors(config: Path = ROOT / ".importlinter") -> List[List[str]]:
    """The layers of the ``floors`` contract, top first, each a list of top-level packages."""
    parser = configparser.ConfigParser()
    parser.read(config)
    lines = parser["importlinter:contract:floors"]["layers"].strip().splitlines()
    return [[m.strip().split(".", 1)[1] for m in line.split("|")] for line in lines]


def package_edges() -> Set[Tuple[str, str]]:
    """``(importer, imported)`` pairs of dgl_emu's top-level packages and modules (function-level
    imports included: grimp reads every import statement)."""
    import grimp
    graph = grimp.build_graph("dgl_emu", include_external_packages=False)
    edges = set()
    for module in graph.modules:
        src = module.split(".")[1] if "." in module else None
        for imported in graph.find_modules_directly_imported_by(module):
            dst = imported.split(".")[1] if "." in imported else None
            if src and dst and src != dst:
                edges.add((src, dst))
    return edges


def draw(out: Path) -> Path:
    """Write the picture to ``out``: one row per floor; an arrow from a package to each package it
    imports that no chain of other imports already reaches (the transitive reduction: the
    whole graph draws every floor to every floor below it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = floors()
    pos: Dict[str, Tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        for i, name in enumerate(row):
            pos[name] = ((i + 0.5) / len(row), -depth)
    import networkx as nx
    graph = nx.DiGraph(e for e in package_edges() if e[0] in pos and e[1] in pos)
    fig, ax = plt.subplots(figsize=(8, 0.75 * len(rows) + 0.6))
    for src, dst in sorted(nx.transitive_reduction(graph).edges):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18),
                    arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.8,
                                "connectionstyle": "arc3,rad=0.08"})
    for name, (x, y) in pos.items():
        ax.text(x, y, name, ha="center", va="center", fontsize=9, family="monospace",
                bbox={"boxstyle": "round,pad=0.35", "fc": "#e8eef7", "ec": "#4c72b0"})
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    ax.set_title("dgl_emu by floor: an arrow from importer to imported where no longer path implies it",
                 fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1] if len(sys.argv) > 1 else "import_graph.png")))

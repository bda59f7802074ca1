"""Dataset registry metadata shipped with dgl-emu (installed as ``dgl_emu._datasets``).

``registry.json`` holds, per benchmark: title, citation, homepage, expected counts, accepted
sha256 per split file, and the canonical download source. No dataset files live here.
"""

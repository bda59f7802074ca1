"""dgl-emu: Embedding MUtation (EMU) for knowledge-graph link prediction, built on DGL.

EMU (Takamoto et al., TMLR 2025, https://arxiv.org/abs/2504.03327) generates hard negatives by
mutating negative embeddings towards the positive one, trained with a soft-label loss.
"""
__version__ = "0.1.0"

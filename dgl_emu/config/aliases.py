"""Flat spellings of common options, shared by flat YAML keys and the CLI's flags.

``num_negatives: 256`` in a YAML file and ``--num-negatives 256`` on the command line both set
``sampler.num_negatives``: every alias is a flat YAML key, and its flag is the same words with
dashes. Configurations written before sections existed (every field flat, as in the committed
benchmark results) are read through the same table by :func:`split_flat`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

__all__ = ["Alias", "ALIASES", "EMU_SWITCH", "LEGACY_FIELDS", "is_legacy", "flag_of", "alias_of"]

#: the boolean alias that switches EMU on (``--emu``) or off (``--no-emu``)
EMU_SWITCH = "emu"


@dataclass(frozen=True)
class Alias:
    """A flat name for one configuration path.

    Attributes
    ----------
    path : str
        Dotted path (``"sampler.num_negatives"``); ``""`` for :data:`EMU_SWITCH`.
    help : str
        One line for ``--help``.
    old_flags : tuple of str
        Earlier spellings of the flag, still accepted.
    """

    path: str
    help: str
    old_flags: Tuple[str, ...] = ()

    def flag(self, name: str) -> str:
        """``--num-negatives`` for alias ``num_negatives``."""
        return "--" + name.replace("_", "-")


#: alias -> :class:`Alias`, in the order of ``dgl-emu run --help``
ALIASES: Dict[str, Alias] = {
    "dataset": Alias("data.dataset", "Registered dataset, 'synthetic' (small, generated) or 'generated' (large, --set data.entities=N)."),
    "data_dir": Alias("data.data_dir", "Root folder holding NAME/ dataset folders."),
    "train": Alias("data.train", "Training triples file (instead of --dataset), in --input-format."),
    "valid": Alias("data.valid", "Validation triples file."),
    "test": Alias("data.test", "Test triples file."),
    "input_format": Alias("data.format", "Layout of --train/--valid/--test: labels (TSV), ids (TSV, DGL-KE udd) or arrays (.npy/.npz)."),
    "entity_dict": Alias("data.entity_dict", "id<TAB>label file of the entities (RotatE entities.dict, DGL-KE entities.tsv)."),
    "relation_dict": Alias("data.relation_dict", "id<TAB>label file of the relations."),
    "data_cache": Alias("data.cache", "Keep parsed files in the binary cache ($DGL_EMU_CACHE) and read them from it."),
    "drop_unseen": Alias("data.drop_unseen", "Drop valid/test triples with entities unseen in training (default: keep)."),
    "model": Alias("model.name", "Interaction (decoder); default rotate, or distmult with a GNN encoder."),
    "dim": Alias("model.dim", "Embedding dimension d (complex models: 2d reals)."),
    "gamma": Alias("model.gamma", "Margin γ of TransE/RotatE and the init range."),
    "p_norm": Alias("model.p_norm", "TransE norm: 1 or 2."),
    "encoder": Alias("encoder.name", "Encoder: lookup tables or a GNN."),
    "encoder_layers": Alias("encoder.num_layers", "GNN layers."),
    "encoder_dropout": Alias("encoder.dropout", "GNN dropout in [0, 1)."),
    "num_bases": Alias("encoder.num_bases", "R-GCN bases (basis) or blocks (bdd)."),
    "decomposition": Alias("encoder.decomposition", "R-GCN weight decomposition."),
    "composition": Alias("encoder.composition", "CompGCN composition operator."),
    "fanouts": Alias("training.fanouts", "Mini-batch neighbour sampling: neighbours per layer, e.g. 10,10 (-1 = all)."),
    "regime": Alias("regime.name", "Training regime: sampled negatives, or 1vsall / kvsall against every entity."),
    "reciprocal": Alias("regime.reciprocal", "Add an inverse relation per relation; head queries become tail queries."),
    "label_smoothing": Alias("regime.label_smoothing", "1vsall/kvsall: label smoothing eps in [0, 1)."),
    "sampler": Alias("sampler.name", "Negative sampler."),
    "num_negatives": Alias("sampler.num_negatives", "Negatives K per positive.", ("--negatives",)),
    "sans_k": Alias("sampler.k", "SANS hops k."),
    "sans_walks": Alias("sampler.num_walks", "SANS random walks per entity."),
    "filtered": Alias("sampler.filtered", "Never sample known training triples."),
    "chunk_size": Alias("sampler.chunk_size", "Share negatives: chunks of this many positives share one draw (uniform, bernoulli)."),
    EMU_SWITCH: Alias("", "Train with EMU (default) or plain negatives."),
    "mutation": Alias("emu.name", "EMU variant."),
    "keep_prob": Alias("emu.keep_prob", "EMU: probability of keeping a negative coordinate (0.39)."),
    "negative_label": Alias("emu.negative_label", "EMU: soft label of mutated negatives (0.53)."),
    "plain_weight": Alias("emu.plain_weight", "EMU: weight of the plain loss (0.11)."),
    "separate_negatives": Alias("emu.separate_negatives", "EMU: the plain and the EMU pass draw their own negatives (2K per positive)."),
    "loss": Alias("loss.name", "Plain loss."),
    "adversarial_temperature": Alias("loss.adversarial_temperature", "Self-adversarial weighting (softplus loss)."),
    "margin": Alias("loss.margin", "Margin of the margin-ranking loss."),
    "regularizer": Alias("regularizer.name", "Regulariser: lp (the batch's embeddings; N3 for p=3) or table (whole tables, as the paper's baselines)."),
    "regularizer_weight": Alias("regularizer.weight", "Regularisation weight (0: off)."),
    "regularizer_p": Alias("regularizer.p", "Regulariser order (3 = N3)."),
    "steps": Alias("training.steps", "Training steps."),
    "batch_size": Alias("training.batch_size", "Positives per step."),
    "optimizer": Alias("optimizer.name", "Optimiser (default adagrad for lookup tables, adam for GNN encoders)."),
    "lr": Alias("optimizer.lr", "Learning rate (default 0.1 for lookup tables, 0.01 for GNN encoders)."),
    "switch_to_adam": Alias("optimizer.switch_to_adam", "Published schedule: Adam at lr/10 after half the steps."),
    "max_grad_norm": Alias("optimizer.max_grad_norm", "Clip the gradients' 2-norm to this before each step."),
    "decay_from": Alias("optimizer.decay_from", "Decay the learning rate linearly from this step to 0 at the last step."),
    "eval_every": Alias("training.eval_every", "Steps between validations (each followed by a checkpoint)."),
    "checkpoint_every_seconds": Alias("training.checkpoint_every_seconds",
                                      "Also checkpoint this many seconds after the last checkpoint (300)."),
    "patience": Alias("training.patience", "Early stopping after this many validations without improvement."),
    "eval_batch_size": Alias("training.eval_batch_size", "Queries per evaluation batch."),
    "evaluator": Alias("evaluator.name", "Evaluation protocol: filtered (every entity) or sampled (N negatives)."),
    "device": Alias("device", "cpu, cuda, cuda:1, ..."),
    "seed": Alias("seed", "One seed for initialisation, data order, sampling and EMU."),
    "output": Alias("output", "Run directory (default runs/<name>)."),
    "progress": Alias("progress", "Progress bars."),
}

#: fields that every flat configuration written by dgl-emu 0.1 holds (metrics.json, config.yaml)
LEGACY_FIELDS = frozenset({"emu", "mutation", "num_negatives", "sans_k", "sans_walks", "encoder_layers",
                           "regularizer_weight", "keep_prob", "switch_to_adam"})


def is_legacy(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is a complete flat configuration written by dgl-emu 0.1.

    Such files carry every field, including options of components the run did not use
    (``sans_k`` of a uniform run); they are read leniently.
    """
    return LEGACY_FIELDS <= set(data) and not any(isinstance(v, Mapping) for v in data.values())


def alias_of(path: str) -> str:
    """The alias of ``path``, or ``""`` when it has none."""
    return next((name for name, a in ALIASES.items() if a.path == path), "")


def flag_of(path: str) -> str:
    """``--num-negatives`` for ``sampler.num_negatives``; ``--set PATH=...`` when it has no flag."""
    alias = alias_of(path)
    return ALIASES[alias].flag(alias) if alias else f"--set {path}"

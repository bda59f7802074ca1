"""Run configuration: typed, validated, loadable from YAML and overridable from the CLI."""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

__all__ = ["RunConfig", "SamplerKind", "LossKind", "MutationKind", "ConfigError", "load_config"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option and what is allowed."""


class SamplerKind(enum.Enum):
    """Negative samplers available to the pipeline."""

    UNIFORM = "uniform"
    BERNOULLI = "bernoulli"
    SANS = "sans"


class LossKind(enum.Enum):
    """Loss of plain (non-EMU) training, and of the plain term of EMU."""

    CE = "ce"
    SOFTPLUS = "softplus"
    MARGIN = "margin"


class MutationKind(enum.Enum):
    """EMU variant: coordinate-wise mutation (the paper's) or Mixup."""

    MUTATION = "mutation"
    MIXUP = "mixup"


@dataclass
class RunConfig:
    """Everything a ``dgl-emu run`` needs. Defaults train on the generated KG in seconds.

    Choice-valued fields hold enums or registry names; :meth:`validate` checks every value and
    raises :class:`ConfigError` naming the option.
    """

    # data
    dataset: str = "synthetic"
    data_dir: Optional[str] = None
    train: Optional[str] = None
    valid: Optional[str] = None
    test: Optional[str] = None
    drop_unseen: bool = False
    # model
    model: Optional[str] = None
    encoder: str = "lookup"
    dim: int = 64
    gamma: float = 12.0
    p_norm: int = 1
    encoder_layers: int = 2
    encoder_dropout: float = 0.1
    num_bases: Optional[int] = None
    decomposition: str = "basis"
    composition: str = "mult"
    fanouts: Optional[List[int]] = None
    # negatives
    sampler: SamplerKind = SamplerKind.UNIFORM
    num_negatives: int = 64
    sans_k: int = 3
    sans_walks: int = 1000
    filtered: bool = False
    # EMU
    emu: bool = True
    mutation: MutationKind = MutationKind.MUTATION
    keep_prob: float = 0.39
    negative_label: float = 0.53
    plain_weight: float = 0.11
    # loss
    loss: LossKind = LossKind.CE
    adversarial_temperature: Optional[float] = None
    margin: float = 1.0
    regularizer_weight: float = 0.0
    regularizer_p: float = 3.0
    # optimisation
    steps: int = 1500
    batch_size: int = 256
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    switch_to_adam: bool = False
    eval_every: int = 500
    patience: Optional[int] = None
    eval_batch_size: int = 512
    # execution
    device: str = "cpu"
    seed: int = 0
    output: Optional[str] = None
    progress: bool = True

    def validate(self) -> "RunConfig":
        """Coerce enum fields from strings and check ranges; returns ``self``."""
        from .nn.interactions import INTERACTIONS
        from .nn.encoders import ENCODERS
        from .training.optim import OptimizerKind

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, enum.Enum) and not isinstance(value, enum.Enum):
                enum_cls = type(f.default)
                try:
                    setattr(self, f.name, enum_cls(str(value).lower()))
                except ValueError:
                    allowed = ", ".join(e.value for e in enum_cls)
                    raise ConfigError(f"{f.name}: {value!r} is not one of: {allowed}") from None
        # encoder-dependent defaults: RotatE on lookup tables, DistMult (the usual R-GCN/CompGCN
        # decoder) on GNN encoders
        if self.model is None:
            self.model = "distmult" if self.encoder != "lookup" else "rotate"
        self._check_types()
        from .data.datasets import DATASETS, SYNTHETIC
        if self.train is None and self.dataset.lower() != SYNTHETIC and self.dataset not in DATASETS:
            raise ConfigError(f"dataset: {self.dataset!r} is not one of: {', '.join([SYNTHETIC] + DATASETS.names())}")
        for name, registry in (("model", INTERACTIONS), ("encoder", ENCODERS)):
            if getattr(self, name) not in registry:
                raise ConfigError(f"{name}: {getattr(self, name)!r} is not one of: {', '.join(registry.names())}")
        # defaults that depend on the encoder: the paper's Adagrad/0.1 for lookup tables, Adam/0.01
        # for GNN encoders (R-GCN with two tanh layers does not train with Adagrad at 0.1)
        gnn = self.encoder != "lookup"
        if self.optimizer is None:
            self.optimizer = "adam" if gnn else "adagrad"
        if self.lr is None:
            self.lr = 0.01 if gnn else 0.1
        if self.optimizer not in {k.value for k in OptimizerKind}:
            raise ConfigError(f"optimizer: {self.optimizer!r} is not one of: "
                              f"{', '.join(k.value for k in OptimizerKind)}")
        positive = ("dim", "num_negatives", "steps", "batch_size", "eval_every", "eval_batch_size",
                    "sans_k", "sans_walks", "encoder_layers")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be a positive integer, got {getattr(self, name)}")
        for name in ("keep_prob", "encoder_dropout"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.plain_weight < 0:
            raise ConfigError(f"plain_weight: must be >= 0, got {self.plain_weight}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be positive, got {self.lr}")
        if self.p_norm not in (1, 2):
            raise ConfigError(f"p_norm: must be 1 or 2, got {self.p_norm}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience: must be positive, got {self.patience}")
        if self.decomposition not in ("basis", "bdd"):
            raise ConfigError(f"decomposition: {self.decomposition!r} is not one of: basis, bdd")
        from .nn.encoders import COMPOSITIONS
        if self.composition not in COMPOSITIONS:
            raise ConfigError(f"composition: {self.composition!r} is not one of: {', '.join(COMPOSITIONS.names())}")
        if self.fanouts is not None:
            if isinstance(self.fanouts, str):
                try:
                    self.fanouts = [int(x) for x in self.fanouts.split(",")]
                except ValueError:
                    raise ConfigError(f"fanouts: expected comma-separated integers, got {self.fanouts!r}") from None
            if len(self.fanouts) != self.encoder_layers or any(f == 0 or f < -1 for f in self.fanouts):
                raise ConfigError(f"fanouts: need one positive count (or -1 = all) per encoder layer "
                                  f"({self.encoder_layers}), got {self.fanouts}")
            if self.encoder == "lookup":
                raise ConfigError("fanouts: neighbour sampling needs a GNN encoder (--encoder rgcn|compgcn)")
        if self.train is None and (self.valid or self.test):
            raise ConfigError("valid/test: given without train")
        return self

    _INTS = ("dim", "p_norm", "encoder_layers", "num_bases", "num_negatives", "sans_k", "sans_walks",
             "steps", "batch_size", "eval_every", "patience", "eval_batch_size", "seed")
    _FLOATS = ("gamma", "encoder_dropout", "keep_prob", "negative_label", "plain_weight",
               "adversarial_temperature", "margin", "regularizer_weight", "regularizer_p", "lr")
    _BOOLS = ("drop_unseen", "filtered", "emu", "switch_to_adam", "progress")

    def _check_types(self) -> None:
        """Reject values of the wrong type (e.g. ``dim: "abc"`` in a YAML file) by option name."""
        for names, ok, what in ((self._INTS, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                                (self._FLOATS, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
                                (self._BOOLS, lambda v: isinstance(v, bool), "true or false")):
            for name in names:
                value = getattr(self, name)
                if value is not None and not ok(value):
                    raise ConfigError(f"{name}: expected {what}, got {value!r}")
        for name in ("dataset", "model", "encoder", "decomposition", "composition", "device"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name}: expected a name, got {getattr(self, name)!r}")

    def to_dict(self) -> Dict[str, Any]:
        """Plain, YAML-ready values (enums as their strings)."""
        return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in dataclasses.asdict(self).items()}

    def to_yaml(self) -> str:
        """The resolved configuration as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def updated(self, **overrides: Any) -> "RunConfig":
        """A copy with ``overrides`` applied (unknown keys raise :class:`ConfigError`)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides).validate()


def load_config(path: Union[str, Path], **overrides: Any) -> RunConfig:
    """Read a YAML mapping of :class:`RunConfig` fields, then apply ``overrides``.

    Raises
    ------
    ConfigError
        Naming the file for unreadable YAML, a non-mapping, or unknown keys.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read YAML config ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown option(s): {', '.join(unknown)}")
    data.update(overrides)
    return RunConfig(**data).validate()

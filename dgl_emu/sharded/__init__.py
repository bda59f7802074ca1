"""Sharded entity embeddings on ``dgl.distributed``: a placement past one machine.

:mod:`.partition` cuts the training graph into partitions (``dgl-emu partition``), :mod:`.launch`
starts a machine's servers (:mod:`.server`) and trainers, :mod:`.placement` connects a trainer and
builds what it trains, :mod:`.encoder` and :mod:`.gnn` hold the entity table in DGL's key-value
store.
"""
from .placement import ShardedPlacement, ShardedReplicas, StoreSchedule, check_options

__all__ = ["ShardedPlacement", "ShardedReplicas", "StoreSchedule", "check_options"]

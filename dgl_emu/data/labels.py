"""Id maps that are not Python dictionaries: labels held in one Arrow string array (millions of
labels cost a few bytes each, and no dictionary is built until a label is looked up)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Dict, Iterator, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["LabelArray"]


class LabelArray(Mapping):
    """``{label: id}`` for labels given in id order, backed by an Arrow string array.

    Iteration yields the labels in id order; ``len`` is the number of ids. The first look-up of
    one label builds a Python dictionary (once); :meth:`ids_of` looks many up without it.

    Parameters
    ----------
    labels : pyarrow.Array or sequence of str
        ``(E,)`` distinct labels, label ``i`` having id ``i``.

    Examples
    --------
    >>> labels = LabelArray(["b", "a", "c"])
    >>> len(labels), labels["a"], list(labels), "d" in labels
    (3, 1, ['b', 'a', 'c'], False)
    >>> labels.ids_of(["c", "x", "b"]).tolist()
    [2, -1, 0]
    """

    def __init__(self, labels):
        if isinstance(labels, pa.ChunkedArray):
            labels = labels.combine_chunks()
        elif not isinstance(labels, pa.Array):
            labels = pa.array(list(labels), type=pa.string())
        if pa.types.is_dictionary(labels.type):
            labels = labels.dictionary.take(labels.indices)
        self._labels = labels
        self._index: Optional[Dict[str, int]] = None

    @property
    def arrow(self) -> pa.Array:
        """The ``(E,)`` labels as an Arrow array, in id order."""
        return self._labels

    def labels(self) -> List[str]:
        """The labels in id order, as a Python list."""
        return self._labels.to_pylist()

    def ids_of(self, labels) -> np.ndarray:
        """``(N,)`` int64 ids of ``labels`` (a sequence or Arrow array of str); ``-1`` where unknown."""
        values = labels if isinstance(labels, (pa.Array, pa.ChunkedArray)) else pa.array(list(labels), pa.string())
        found = pc.index_in(values, value_set=self._labels)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def __getitem__(self, label: str) -> int:
        if self._index is None:
            self._index = {label: i for i, label in enumerate(self._labels.to_pylist())}
        return self._index[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels.to_pylist())

    def __len__(self) -> int:
        return len(self._labels)

    def __eq__(self, other) -> bool:
        if isinstance(other, LabelArray):
            return self._labels.equals(other._labels)
        return Mapping.__eq__(self, other)

    __hash__ = None  # a mapping: not hashable

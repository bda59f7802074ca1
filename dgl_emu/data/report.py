"""What loading a split found (:class:`SplitReport`) and the policy for unseen entities."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import List, Optional

__all__ = ["UnseenEntityPolicy", "SplitReport"]


class UnseenEntityPolicy(enum.Enum):
    """What to do with valid/test triples whose entity or relation never occurs in training.

    ``KEEP`` (default) keeps them, as most papers do (FB15k-237 keeps all 20,466 test triples);
    such entities still receive ids and embeddings. ``DROP`` removes those triples and the
    entities that then occur nowhere, as PyKEEN does.
    """

    KEEP = "keep"
    DROP = "drop"


@dataclass
class SplitReport:
    """What loading found in one split.

    Attributes
    ----------
    triples : int
        Triples in the file.
    duplicates : int
        Triples that repeat an earlier line of the same split (kept).
    unseen_entities : int
        Distinct entities of this split absent from training.
    unseen_triples : int
        Triples with an entity or relation absent from training.
    dropped : int
        Triples removed by :attr:`UnseenEntityPolicy.DROP` (the others with unseen entities or
        relations were kept: ``unseen_triples - dropped``).
    in_train : int
        Triples (of valid or test) that also occur in the training split (kept: a model that
        memorised training ranks them first, so they inflate the metrics).
    header : list of str, optional
        A header line recognised at the top of the file and skipped.
    """

    triples: int = 0
    duplicates: int = 0
    unseen_entities: int = 0
    unseen_triples: int = 0
    dropped: int = 0
    in_train: int = 0
    header: Optional[List[str]] = None

    @property
    def kept_unseen(self) -> int:
        """Triples with an entity or relation absent from training that were kept."""
        return self.unseen_triples - self.dropped

    def summary(self) -> str:
        """One line: ``272115 triples (0 duplicates kept)``, with unseen, training-overlap and
        header notes.

        Examples
        --------
        >>> SplitReport(triples=10, in_train=2).summary()
        '10 triples (0 duplicates kept; 2 also in training, kept)'
        """
        text = f"{self.triples} triples ({self.duplicates} duplicates kept"
        if self.in_train:
            text += f"; {self.in_train} also in training, kept"
        if self.unseen_triples:
            text += f"; {self.unseen_triples} with entities or relations unseen in training: " \
                    f"{self.kept_unseen} kept, {self.dropped} dropped"
        if self.header:
            text += f"; header line {chr(9).join(self.header)!r} skipped"
        return text + ")"

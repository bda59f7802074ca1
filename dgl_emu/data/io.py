"""Readers for triple files: labelled TSV (plain or gzip), RotatE-style ``.dict`` files, id triples.

The input contract (also stated in the docs' data page): UTF-8 text, optionally gzip-compressed;
LF or CRLF line endings; a UTF-8 byte-order mark at the start of a file is ignored; one record per
line with exactly the expected number of tab-separated fields, none empty and none with leading
or trailing whitespace (rejected, never silently stripped: ``"a "`` and ``"a"`` would otherwise be
two entities, or one, depending on the reader); blank lines are rejected. The first line of a
triple file may be a header of the names in :data:`HEADER_NAMES` (``head relation tail``, ...),
which is recognised, skipped and reported. Every reader reports a violation with the file and the
1-based line number.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

__all__ = ["DataFormatError", "read_labeled_triples", "read_dict_file", "read_id_triples", "resolve_split_file",
           "PathLike", "Triples", "HEADER_NAMES"]

#: first lines recognised as a header of a triple file (compared case-insensitively)
HEADER_NAMES = frozenset({("head", "relation", "tail"), ("h", "r", "t"), ("subject", "predicate", "object"),
                          ("head_id", "relation_id", "tail_id"), ("source", "relation", "target")})


class Triples(list):
    """The triples of one file, in file order; ``header`` holds a skipped header line, if any."""

    header: Optional[Tuple[str, ...]] = None

PathLike = Union[str, "os.PathLike[str]"]


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataFormatError(f"{path}: file does not exist")
    if path.is_dir():
        raise DataFormatError(f"{path}: expected a file, found a directory")
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError) as e:
            raise DataFormatError(f"{path}: not a readable gzip file ({e})") from None
    return path.read_bytes()


def _lines(path: Path) -> List[str]:
    """Decode ``path`` as UTF-8 and split into lines, tolerating CRLF."""
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataFormatError(
            f"{path}:{line}: bytes are not valid UTF-8 ({e.reason} at byte {e.start})") from None
    if text.startswith("\ufeff"):  # a byte-order mark is not part of the first label
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _fields(path: Path, lineno: int, line: str, n: int, what: str) -> List[str]:
    parts = line.split("\t")
    if len(parts) != n:
        raise DataFormatError(
            f"{path}:{lineno}: expected {n} tab-separated fields ({what}), found {len(parts)}: {line[:80]!r}")
    for i, p in enumerate(parts):
        if not p.strip():
            raise DataFormatError(f"{path}:{lineno}: field {i + 1} is empty ({what})")
        if p != p.strip():
            raise DataFormatError(f"{path}:{lineno}: field {i + 1} ({p!r}) has leading or trailing "
                                  f"whitespace; labels must not (remove it from the file)")
    return parts


def _header(parts: List[str]) -> bool:
    return tuple(p.strip().lower() for p in parts) in HEADER_NAMES


def read_labeled_triples(path: PathLike) -> Triples:
    """Read ``head<TAB>relation<TAB>tail`` lines.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file, optionally gzip-compressed (``.gz``); LF or CRLF line endings.

    Returns
    -------
    Triples
        A list of ``(str, str, str)`` in file order (duplicates kept; the caller counts them);
        its ``header`` attribute holds a skipped header line.

    Raises
    ------
    DataFormatError
        If the file does not exist, is not UTF-8, a line has the wrong number of fields, an empty
        field or a field with surrounding whitespace, or the file holds no triple.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = p.write_text("a\\tlikes\\tb\\r\\nb\\tlikes\\tc\\n")
    >>> read_labeled_triples(p)
    [('a', 'likes', 'b'), ('b', 'likes', 'c')]
    """
    path = Path(path)
    out = Triples()
    for lineno, line in enumerate(_lines(path), start=1):
        if lineno == 1 and _header(line.split("\t")):
            out.header = tuple(line.split("\t"))
            continue
        h, r, t = _fields(path, lineno, line, 3, "head, relation, tail")
        out.append((h, r, t))
    if not out:
        raise DataFormatError(f"{path}: no triples found (empty split)")
    return out


def read_dict_file(path: PathLike) -> Dict[str, int]:
    """Read a RotatE-style ``id<TAB>label`` file (``entities.dict``, ``relations.dict``).

    Returns
    -------
    dict of str to int
        Label to id. Ids must be exactly ``0 .. n-1`` with no duplicate label or id.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "relations.dict"
    >>> _ = p.write_text("0\\tlikes\\n1\\tknows\\n")
    >>> read_dict_file(p)
    {'likes': 0, 'knows': 1}
    """
    path = Path(path)
    mapping: Dict[str, int] = {}
    seen_ids = set()
    for lineno, line in enumerate(_lines(path), start=1):
        idx, label = _fields(path, lineno, line, 2, "id, label")
        try:
            i = int(idx)
        except ValueError:
            raise DataFormatError(f"{path}:{lineno}: id {idx!r} is not an integer") from None
        if label in mapping or i in seen_ids:
            raise DataFormatError(f"{path}:{lineno}: duplicate label {label!r} or id {i}")
        mapping[label] = i
        seen_ids.add(i)
    if not mapping:
        raise DataFormatError(f"{path}: file is empty")
    if seen_ids != set(range(len(mapping))):
        raise DataFormatError(f"{path}: ids must be exactly 0..{len(mapping) - 1}")
    return mapping


def resolve_split_file(directory: PathLike, split: str) -> Path:
    """Find ``split.txt`` or ``split.txt.gz`` in ``directory``.

    Raises
    ------
    DataFormatError
        If neither exists.
    """
    directory = Path(directory)
    for name in (f"{split}.txt", f"{split}.txt.gz", f"{split}.tsv", f"{split}.tsv.gz"):
        p = directory / name
        if p.exists():
            return p
    raise DataFormatError(f"{directory}: no {split}.txt or {split}.txt.gz found")


def read_id_triples(path: PathLike) -> List[Tuple[int, int, int]]:
    """Read ``head_id<TAB>relation_id<TAB>tail_id`` lines of non-negative integers.

    Raises
    ------
    DataFormatError
        On a non-integer or negative field (file and line named), or an empty file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.ids"
    >>> _ = p.write_text("0\\t1\\t2\\n")
    >>> read_id_triples(p)
    [(0, 1, 2)]
    """
    path = Path(path)
    out = Triples()
    for lineno, line in enumerate(_lines(path), start=1):
        if lineno == 1 and _header(line.split("\t")):
            out.header = tuple(line.split("\t"))
            continue
        parts = _fields(path, lineno, line, 3, "head id, relation id, tail id")
        try:
            ids = tuple(int(p) for p in parts)
        except ValueError:
            raise DataFormatError(f"{path}:{lineno}: expected integer ids, found {line[:80]!r}") from None
        if min(ids) < 0:
            raise DataFormatError(f"{path}:{lineno}: ids must be non-negative, found {line[:80]!r}")
        out.append(ids)
    if not out:
        raise DataFormatError(f"{path}: no triples found (empty split)")
    return out

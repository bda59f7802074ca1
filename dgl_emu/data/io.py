"""Readers for triple files: labelled TSV (plain or gzip), RotatE-style ``.dict`` files, id triples.

Every reader reports bad input with the file and the 1-based line number.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

__all__ = ["DataFormatError", "read_labeled_triples", "read_dict_file", "read_id_triples", "resolve_split_file",
           "PathLike"]

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
    return parts


def read_labeled_triples(path: PathLike) -> List[Tuple[str, str, str]]:
    """Read ``head<TAB>relation<TAB>tail`` lines.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file, optionally gzip-compressed (``.gz``); LF or CRLF line endings.

    Returns
    -------
    list of (str, str, str)
        The triples in file order (duplicates kept; the caller counts them).

    Raises
    ------
    DataFormatError
        If the file does not exist, is not UTF-8, a line has the wrong number of fields or an
        empty field, or the file holds no triple.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = p.write_text("a\\tlikes\\tb\\r\\nb\\tlikes\\tc\\n")
    >>> read_labeled_triples(p)
    [('a', 'likes', 'b'), ('b', 'likes', 'c')]
    """
    path = Path(path)
    out = []
    for lineno, line in enumerate(_lines(path), start=1):
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
    out = []
    for lineno, line in enumerate(_lines(path), start=1):
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

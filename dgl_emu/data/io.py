"""Readers for triple files: labelled TSV (plain or gzip), RotatE-style ``.dict`` files, id triples.

The input contract (also stated in the docs' data page): UTF-8 text, optionally gzip-compressed;
LF or CRLF line endings; a UTF-8 byte-order mark at the start of a file is ignored; one record per
line with exactly the expected number of tab-separated fields, none empty and none with leading
or trailing whitespace (rejected, never silently stripped: ``"a "`` and ``"a"`` would otherwise be
two entities, or one, depending on the reader); blank lines are rejected. The first line of a
triple file may be a header of the names in :data:`HEADER_NAMES` (``head relation tail``, ...),
which is recognised, skipped and reported. Every reader reports a violation with the file and the
1-based line number.

These line-by-line readers are the reference: dgl-emu reads files with the columnar readers of
:mod:`dgl_emu.data.columnar` (pyarrow), which must give the same ids (a test holds it) and call
:func:`check_triple_file` or :func:`read_dict_file` to name the line of a file they refuse.
"""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

__all__ = ["DataFormatError", "read_labeled_triples", "read_dict_file", "read_id_triples", "resolve_split_file",
           "PathLike", "Triples", "HEADER_NAMES", "BOM", "is_decimal", "is_header", "read_bytes",
           "check_triple_file"]

#: first lines recognised as a header of a triple file (compared case-insensitively)
HEADER_NAMES = frozenset({("head", "relation", "tail"), ("h", "r", "t"), ("subject", "predicate", "object"),
                          ("head_id", "relation_id", "tail_id"), ("source", "relation", "target")})


class Triples(list):
    """The triples of one file, in file order; ``header`` holds a skipped header line, if any."""

    header: Optional[Tuple[str, ...]] = None

PathLike = Union[str, "os.PathLike[str]"]

#: the UTF-8 byte-order mark, removed from the start of a file
BOM = b"\xef\xbb\xbf"


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, decompressed if it ends in ``.gz``; a missing file, a directory or a bad gzip
    file is a :class:`DataFormatError` naming it."""
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


def _iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """``(1-based line number, line)`` of ``path`` decoded as UTF-8, one at a time (no list of the
    whole file): LF or CRLF endings, a byte-order mark at the start removed. A carriage return
    anywhere but before the line feed is refused (old Mac line ends, or a label holding one)."""
    data = read_bytes(path)
    for lineno, raw in enumerate(io.BytesIO(data), start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if lineno == 1 and raw.startswith(BOM):  # a byte-order mark is not part of the first label
            raw = raw[len(BOM):]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{path}:{lineno}: bytes are not valid UTF-8 ({e.reason} at byte "
                                  f"{e.start} of the line)") from None
        if "\r" in line:
            raise DataFormatError(f"{path}:{lineno}: a carriage return (\\r) inside the line; only LF or "
                                  f"CRLF line endings are accepted")
        yield lineno, line


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


def is_decimal(text: str) -> bool:
    """Whether ``text`` is a non-negative integer written in ASCII decimal digits (what every id
    field must be: ``+1``, ``1_000`` or other scripts' digits, which :class:`int` would take, are not).

    Examples
    --------
    >>> is_decimal("012"), is_decimal("+1"), is_decimal("1_0"), is_decimal("")
    (True, False, False, False)
    """
    return text.isascii() and text.isdigit()


def is_header(parts: List[str]) -> bool:
    """Whether the fields of a first line are a header (:data:`HEADER_NAMES`, any case)."""
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
    return _collect(_labeled_records(Path(path)), Path(path))


def _labeled_records(path: Path) -> Iterator[Tuple[int, Tuple[str, ...]]]:
    """``(line, fields)`` of a labelled triple file; line ``0`` carries a recognised header."""
    for lineno, line in _iter_lines(path):
        if lineno == 1 and is_header(line.split("\t")):
            yield 0, tuple(line.split("\t"))
            continue
        yield lineno, tuple(_fields(path, lineno, line, 3, "head, relation, tail"))


def _collect(records: Iterator[Tuple[int, tuple]], path: Path) -> Triples:
    out = Triples()
    for lineno, fields in records:
        if lineno == 0:
            out.header = fields
        else:
            out.append(fields)
    if not out:
        raise DataFormatError(f"{path}: no triples found (empty split)")
    return out


def check_triple_file(path: PathLike, integer: bool = False) -> None:
    """Read ``path`` line by line as a labelled (or, ``integer``, an id) triple file, keeping nothing,
    and raise the first violation of the input contract, naming its line (what the columnar
    readers call to say where a file they refused is wrong).

    Raises
    ------
    DataFormatError
        The first violation, as :func:`read_labeled_triples` or :func:`read_id_triples` words it.
    """
    path = Path(path)
    records = _id_records(path) if integer else _labeled_records(path)
    if not any(lineno for lineno, _ in records):  # consumes every line, stops at the first error
        raise DataFormatError(f"{path}: no triples found (empty split)")
    for _ in records:
        pass


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
    for lineno, line in _iter_lines(path):
        idx, label = _fields(path, lineno, line, 2, "id, label")
        if not is_decimal(idx):
            raise DataFormatError(f"{path}:{lineno}: id {idx!r} is not an integer (non-negative, in decimal digits)")
        i = int(idx)
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
    return _collect(_id_records(Path(path)), Path(path))


def _id_records(path: Path) -> Iterator[Tuple[int, Tuple[int, ...]]]:
    """``(line, ids)`` of an id triple file; line ``0`` carries a recognised header."""
    for lineno, line in _iter_lines(path):
        if lineno == 1 and is_header(line.split("\t")):
            yield 0, tuple(line.split("\t"))
            continue
        parts = _fields(path, lineno, line, 3, "head id, relation id, tail id")
        if any(p.startswith("-") and is_decimal(p[1:]) for p in parts):
            raise DataFormatError(f"{path}:{lineno}: ids must be non-negative, found {line[:80]!r}")
        if not all(is_decimal(p) for p in parts):
            raise DataFormatError(f"{path}:{lineno}: expected integer ids in decimal digits, found {line[:80]!r}")
        yield lineno, tuple(int(p) for p in parts)

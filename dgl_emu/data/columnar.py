"""Tab-separated files read into Arrow columns by pyarrow's multi-threaded CSV reader.

The production readers of triple and ``.dict`` files. They hold every file to the input contract
of :mod:`dgl_emu.data.io` with vectorised checks (a carriage return only before a line feed,
UTF-8, the number of fields, no empty field, no surrounding whitespace, ids in decimal digits);
when a check fails, the line-by-line reader of :mod:`~dgl_emu.data.io` reads the file again to
name the line and what is wrong with it, in the same words (only a bad file pays for that).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .io import BOM, DataFormatError, PathLike, check_triple_file, is_header, read_bytes, read_dict_file
from .labels import LabelArray

__all__ = ["ColumnFile", "TRIPLE_COLUMNS", "COLUMN_ORDERS", "read_triple_columns", "read_dictionary"]

#: the columns of a triple file, in the order they are returned
TRIPLE_COLUMNS = ("head", "relation", "tail")
#: the orders a triple file's columns may come in (DGL-KE's ``raw_udd_{hrt}`` / ``udd_{hrt}``)
COLUMN_ORDERS = ("hrt", "htr", "rht", "rth", "thr", "trh")
_LETTER = {"h": "head", "r": "relation", "t": "tail"}
#: parse blocks of this many bytes, one per thread at a time
_BLOCK = 1 << 23
#: labels starting or ending with a character Python's ``str.strip`` removes (RE2 syntax)
_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x110000)) if c.isspace())
_EDGE_SPACE = f"^[{_SPACE}]|[{_SPACE}]$"


@dataclass
class ColumnFile:
    """One file read into Arrow columns.

    Attributes
    ----------
    path : Path
        The file.
    table : pyarrow.Table
        One string column per field, named as asked (``head``, ``relation``, ``tail``), rows in
        file order; id columns as int64.
    header : tuple of str, optional
        A recognised header line that was skipped.
    first_line : int
        The file's line number of row 0 (2 after a header).
    """

    path: Path
    table: pa.Table
    header: Optional[Tuple[str, ...]]
    first_line: int

    def __len__(self) -> int:
        return self.table.num_rows

    def line_of(self, row: int) -> int:
        """The 1-based line of row ``row`` (every line is a row: blank lines are refused)."""
        return self.first_line + int(row)


def _refuse(path: Path, locate: Callable[[Path], object], why: str) -> DataFormatError:
    """The error of a file a vectorised check refused: the line-by-line reader's, naming the line."""
    try:
        locate(path)
    except DataFormatError as e:
        return e
    return DataFormatError(f"{path}: {why}")


def _read(path: Path, names: Sequence[str], locate: Callable[[Path], object],
          triples: bool) -> ColumnFile:
    data = read_bytes(path)
    start = len(BOM) if data.startswith(BOM) else 0
    if data.find(b"\r") >= 0:  # CRLF is fine; a carriage return anywhere else is not
        arr = np.frombuffer(data, dtype=np.uint8)
        cr = np.flatnonzero(arr[:-1] == 13)
        if (arr[cr + 1] != 10).any():
            raise _refuse(path, locate, "a carriage return inside a line")
    header, first_line = None, 1
    if triples:
        end = data.find(b"\n", start)
        first = data[start:end if end >= 0 else len(data)].rstrip(b"\r")
        try:
            parts = first.decode("utf-8").split("\t")
        except UnicodeDecodeError:
            raise _refuse(path, locate, "not UTF-8") from None
        if is_header(parts):
            header, first_line = tuple(parts), 2
            start = end + 1 if end >= 0 else len(data)
    if start >= len(data):
        raise _refuse(path, locate, "no records found")
    buffer = pa.py_buffer(data)[start:]
    read = pacsv.ReadOptions(column_names=list(names), use_threads=True, block_size=_BLOCK)
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False, double_quote=False,
                               ignore_empty_lines=False, newlines_in_values=False)
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[],
                                   strings_can_be_null=False, quoted_strings_can_be_null=False, check_utf8=True)
    try:
        table = pacsv.read_csv(pa.BufferReader(buffer), read, parse, convert)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise _refuse(path, locate, str(e)) from None
    del buffer, data
    return ColumnFile(path, table, header, first_line)


def _check_labels(file: ColumnFile, column: str, locate: Callable[[Path], object]) -> pa.Array:
    """No empty label and none with leading or trailing whitespace (checked on distinct values,
    which are returned so that :func:`_to_ids` does not hash the column again)."""
    values = pc.unique(file.table.column(column))
    bad = pc.or_(pc.equal(pc.binary_length(values), 0), pc.match_substring_regex(values, _EDGE_SPACE))
    if pc.any(bad).as_py():
        raise _refuse(file.path, locate, f"a {column} label is empty or has surrounding whitespace")
    return values


def _to_ids(file: ColumnFile, column: str, locate: Callable[[Path], object], distinct: pa.Array) -> pa.ChunkedArray:
    """A column of decimal ids as int64 (anything else: the line-by-line reader's error);
    ``distinct`` are its distinct values, as :func:`_check_labels` returned them."""
    values = file.table.column(column)
    if not pc.all(pc.match_substring_regex(distinct, "^[0-9]+$")).as_py():
        raise _refuse(file.path, locate, f"a {column} id is not a non-negative integer in decimal digits")
    try:
        return pc.cast(values, pa.int64())
    except pa.ArrowInvalid as e:
        raise _refuse(file.path, locate, f"a {column} id does not fit 64 bits ({e})") from None


def _order(columns: str) -> Tuple[str, ...]:
    if columns not in COLUMN_ORDERS:
        raise ValueError(f"column order must be one of {', '.join(COLUMN_ORDERS)}, got {columns!r}")
    return tuple(_LETTER[c] for c in columns)


def read_triple_columns(path: PathLike, *, ids: bool = False, columns: str = "hrt") -> ColumnFile:
    """Read a triple file: labels (``ids=False``) or integer ids, one triple a line.

    Parameters
    ----------
    path : path-like
        UTF-8 text, optionally gzip-compressed (``.gz``), as :mod:`dgl_emu.data.io` says; a
        recognised header line is skipped and reported.
    ids : bool
        Fields are non-negative integer ids (``head_id<TAB>relation_id<TAB>tail_id``).
    columns : str
        The order of the fields in the file, a permutation of ``hrt`` (DGL-KE's ``htr`` ...).

    Returns
    -------
    ColumnFile
        Columns ``head``, ``relation``, ``tail``: ``(N,)`` strings, or ``(N,)`` int64 ids.

    Raises
    ------
    DataFormatError
        Naming the file and the line of the first violation (as :func:`~dgl_emu.data.io.read_labeled_triples`
        or :func:`~dgl_emu.data.io.read_id_triples` words it), or an empty file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = p.write_text("head\\trelation\\ttail\\na\\tlikes\\tb\\r\\nb\\tlikes\\tc\\n")
    >>> f = read_triple_columns(p)
    >>> f.table.column("tail").to_pylist(), f.header, f.line_of(1)
    (['b', 'c'], ('head', 'relation', 'tail'), 3)
    """
    path = Path(path)
    names = _order(columns)

    def locate(p: Path) -> None:
        check_triple_file(p, integer=ids)

    file = _read(path, names, locate, triples=True)
    distinct = {name: _check_labels(file, name, locate) for name in names}
    if ids:
        file.table = pa.table({n: _to_ids(file, n, locate, distinct[n]) for n in TRIPLE_COLUMNS})
    else:
        file.table = file.table.select(list(TRIPLE_COLUMNS))
    return file


def read_dictionary(path: PathLike) -> LabelArray:
    """Read an ``id<TAB>label`` file (RotatE's ``entities.dict``, DGL-KE's ``entities.tsv``).

    Returns
    -------
    LabelArray
        The labels in id order; the ids must be exactly ``0 .. n-1`` and the labels distinct.

    Raises
    ------
    DataFormatError
        As :func:`~dgl_emu.data.io.read_dict_file` words it (file and line).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "relations.dict"
    >>> _ = p.write_text("1\\tknows\\n0\\tlikes\\n")
    >>> list(read_dictionary(p))
    ['likes', 'knows']
    """
    path = Path(path)
    file = _read(path, ("id", "label"), read_dict_file, triples=False)
    distinct_labels = _check_labels(file, "label", read_dict_file)
    distinct = _check_labels(file, "id", read_dict_file)
    ids = np.asarray(_to_ids(file, "id", read_dict_file, distinct).to_numpy())
    labels = file.table.column("label")
    n = len(ids)
    if not np.array_equal(np.sort(ids), np.arange(n)) or len(distinct_labels) != n:
        raise _refuse(path, read_dict_file, f"ids must be exactly 0..{n - 1}, labels distinct")
    return LabelArray(labels.combine_chunks().take(pa.array(np.argsort(ids, kind="stable"))))

"""Readers of triple files: labelled TSV (plain / gzip / CRLF), ``.dict`` id maps, id triples.

Every error must name the file and, where a line is at fault, the 1-based line as ``path:line:``.
"""
from __future__ import annotations

import gzip

import pytest

from dgl_emu.data import DataFormatError, read_dict_file, read_id_triples, read_labeled_triples
from dgl_emu.data.io import resolve_split_file

TRIPLES = [("a", "likes", "b"), ("b", "knows", "c"), ("c", "likes", "a")]
TEXT = "".join(f"{h}\t{r}\t{t}\n" for h, r, t in TRIPLES)


def _write(path, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- labelled triples: good input
def test_labeled_plain(tmp_path):
    assert read_labeled_triples(_write(tmp_path / "train.txt", TEXT)) == TRIPLES


def test_labeled_gzip_equals_plain(tmp_path):
    gz = tmp_path / "train.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write(TEXT.encode("utf-8"))
    assert gz.read_bytes()[:2] == b"\x1f\x8b"  # really compressed
    assert read_labeled_triples(gz) == TRIPLES
    assert read_labeled_triples(str(gz)) == TRIPLES  # str paths too


def test_labeled_crlf_tolerated(tmp_path):
    p = _write(tmp_path / "train.txt", TEXT.replace("\n", "\r\n"))
    out = read_labeled_triples(p)
    assert out == TRIPLES
    assert all("\r" not in x for triple in out for x in triple)


def test_labeled_crlf_gzip_and_no_final_newline(tmp_path):
    gz = tmp_path / "valid.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write(TEXT.replace("\n", "\r\n").rstrip("\r\n").encode("utf-8"))
    assert read_labeled_triples(gz) == TRIPLES


def test_labeled_keeps_duplicates_order_and_unicode(tmp_path):
    text = "é\tr\tß\nb\tr\ta\né\tr\tß\n"
    p = _write(tmp_path / "t.txt", text)
    assert read_labeled_triples(p) == [("é", "r", "ß"), ("b", "r", "a"), ("é", "r", "ß")]


def test_labeled_keeps_leading_zeros_and_spaces_inside_labels(tmp_path):
    p = _write(tmp_path / "t.txt", "00260881\t_hypernym\t00001740\nNew York\tin\tUSA\n")
    assert read_labeled_triples(p) == [("00260881", "_hypernym", "00001740"), ("New York", "in", "USA")]


# ---------------------------------------------------------------------- labelled triples: errors
def test_wrong_field_count_names_file_and_line(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\tb\nb\tr\tc\nc\tr\n")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:3: ")
    assert "expected 3" in msg and "found 2" in msg


def test_too_many_fields(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\tb\tx\n")
    with pytest.raises(DataFormatError, match="found 4") as ei:
        read_labeled_triples(p)
    assert str(ei.value).startswith(f"{p}:1: ")


def test_space_separated_is_not_three_fields(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\tb\na r b\n")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_empty_field_names_file_line_and_field(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\tb\nb\t\tc\n")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}:2: ")
    assert "field 2 is empty" in msg


def test_whitespace_only_field_is_empty(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\t  \n")
    with pytest.raises(DataFormatError, match="field 3 is empty") as ei:
        read_labeled_triples(p)
    assert str(ei.value).startswith(f"{p}:1: ")


def test_blank_line_in_middle_is_an_error(tmp_path):
    p = _write(tmp_path / "train.txt", "a\tr\tb\n\nb\tr\tc\n")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_invalid_utf8_names_line(tmp_path):
    p = _write(tmp_path / "train.txt", b"a\tr\tb\nb\tr\tc\nc\tr\t\xff\xfe\nd\tr\te\n")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    msg = str(ei.value)
    assert f"{p}:3:" in msg
    assert msg.startswith(f"{p}:3: ")
    assert "UTF-8" in msg


def test_invalid_utf8_inside_gzip_names_line(tmp_path):
    gz = tmp_path / "test.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"a\tr\tb\r\n\xc3\x28\tr\tc\r\n")  # invalid 2-byte sequence on line 2
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(gz)
    assert str(ei.value).startswith(f"{gz}:2: ")


def test_empty_file(tmp_path):
    p = _write(tmp_path / "valid.txt", b"")
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ")
    assert "no triples" in msg


def test_empty_gzip_file(tmp_path):
    gz = tmp_path / "valid.txt.gz"
    with gzip.open(gz, "wb"):
        pass
    with pytest.raises(DataFormatError, match="no triples") as ei:
        read_labeled_triples(gz)
    assert str(ei.value).startswith(f"{gz}: ")


def test_missing_file(tmp_path):
    p = tmp_path / "nope" / "train.txt"
    with pytest.raises(DataFormatError) as ei:
        read_labeled_triples(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ")
    assert "does not exist" in msg


def test_missing_file_is_a_value_error_not_a_raw_oserror(tmp_path):
    with pytest.raises(ValueError):
        read_labeled_triples(tmp_path / "missing.txt")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DataFormatError, match="directory") as ei:
        read_labeled_triples(tmp_path)
    assert str(ei.value).startswith(f"{tmp_path}: ")


def test_corrupt_gzip(tmp_path):
    gz = _write(tmp_path / "train.txt.gz", b"\x1f\x8bthis is not gzip")
    with pytest.raises(DataFormatError, match="gzip") as ei:
        read_labeled_triples(gz)
    assert str(ei.value).startswith(f"{gz}: ")


# ---------------------------------------------------------------------- .dict files
def test_dict_file_reads_labels_to_ids(tmp_path):
    p = _write(tmp_path / "entities.dict", "1\tb\n0\ta\n2\tc\r\n")
    assert read_dict_file(p) == {"b": 1, "a": 0, "c": 2}


@pytest.mark.parametrize("text", ["0\ta\n2\tb\n", "1\ta\n2\tb\n", "0\ta\n1\tb\n5\tc\n"])
def test_dict_ids_not_contiguous(tmp_path, text):
    p = _write(tmp_path / "relations.dict", text)
    with pytest.raises(DataFormatError) as ei:
        read_dict_file(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ")
    n = text.count("\n")
    assert f"0..{n - 1}" in msg


def test_dict_duplicate_label(tmp_path):
    p = _write(tmp_path / "entities.dict", "0\ta\n1\tb\n2\ta\n")
    with pytest.raises(DataFormatError, match="duplicate") as ei:
        read_dict_file(p)
    assert str(ei.value).startswith(f"{p}:3: ")


def test_dict_duplicate_id(tmp_path):
    p = _write(tmp_path / "entities.dict", "0\ta\n0\tb\n1\tc\n")
    with pytest.raises(DataFormatError, match="duplicate") as ei:
        read_dict_file(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_dict_non_integer_id(tmp_path):
    p = _write(tmp_path / "entities.dict", "0\ta\nx\tb\n")
    with pytest.raises(DataFormatError, match="not an integer") as ei:
        read_dict_file(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_dict_wrong_field_count(tmp_path):
    p = _write(tmp_path / "entities.dict", "0\ta\n1\tb\tc\n")
    with pytest.raises(DataFormatError, match="expected 2") as ei:
        read_dict_file(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_dict_empty(tmp_path):
    p = _write(tmp_path / "entities.dict", "")
    with pytest.raises(DataFormatError, match="empty") as ei:
        read_dict_file(p)
    assert str(ei.value).startswith(f"{p}: ")


# ---------------------------------------------------------------------- id triples
def test_id_triples(tmp_path):
    p = _write(tmp_path / "train.ids", "0\t1\t2\r\n3\t0\t0\n10\t2\t7")
    assert read_id_triples(p) == [(0, 1, 2), (3, 0, 0), (10, 2, 7)]


@pytest.mark.parametrize("bad", ["x", "1.5", "0x1", "1e3"])
def test_id_triples_non_integer(tmp_path, bad):
    p = _write(tmp_path / "train.ids", f"0\t0\t1\n1\t0\t{bad}\n")
    with pytest.raises(DataFormatError, match="integer") as ei:
        read_id_triples(p)
    assert str(ei.value).startswith(f"{p}:2: ")


def test_id_triples_negative(tmp_path):
    p = _write(tmp_path / "train.ids", "0\t0\t1\n1\t0\t2\n2\t-1\t0\n")
    with pytest.raises(DataFormatError, match="non-negative") as ei:
        read_id_triples(p)
    assert str(ei.value).startswith(f"{p}:3: ")


def test_id_triples_empty(tmp_path):
    p = _write(tmp_path / "train.ids", "")
    with pytest.raises(DataFormatError, match="no triples") as ei:
        read_id_triples(p)
    assert str(ei.value).startswith(f"{p}: ")


def test_id_triples_wrong_field_count(tmp_path):
    p = _write(tmp_path / "train.ids", "0\t0\t1\n1\t0\n")
    with pytest.raises(DataFormatError, match="expected 3") as ei:
        read_id_triples(p)
    assert str(ei.value).startswith(f"{p}:2: ")


# ---------------------------------------------------------------------- split file resolution
def test_resolve_split_file_prefers_plain_then_gz(tmp_path):
    _write(tmp_path / "valid.txt.gz", b"")
    assert resolve_split_file(tmp_path, "valid") == tmp_path / "valid.txt.gz"
    _write(tmp_path / "valid.txt", b"")
    assert resolve_split_file(tmp_path, "valid") == tmp_path / "valid.txt"
    with pytest.raises(DataFormatError) as ei:
        resolve_split_file(tmp_path, "test")
    assert str(ei.value).startswith(f"{tmp_path}: ")
    assert "test.txt" in str(ei.value)

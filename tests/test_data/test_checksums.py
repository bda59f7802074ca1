"""The suite keeps dgl-emu's user cache private: the datasets it fabricates under registered names
must not become the user's recorded checksums."""
from __future__ import annotations

import os

from dgl_emu.data import checksums


def test_records_go_to_the_suites_private_cache(tmp_path_factory):
    base = tmp_path_factory.getbasetemp().resolve()
    checksums.record("fabricated", "train.txt", "ab" * 32, path=None)
    file = checksums.cache_dir() / checksums.RECORDS
    assert file.resolve().is_relative_to(base)
    assert checksums.records()["fabricated/train.txt"]["sha256"] == "ab" * 32
    assert checksums.forget("fabricated") == ["fabricated/train.txt"]
    # the fused kernels' build cache is left where torch keeps it (not rebuilt per session)
    assert not os.path.realpath(os.environ["TORCH_EXTENSIONS_DIR"]).startswith(str(base))

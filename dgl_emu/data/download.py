"""Downloads of registered datasets: canonical sources (files, tar or zip archives) or a mirror.

Every file is verified before it is moved into place, so a failed download leaves no partial
file. A dataset without registered checksums gets the digests of its first download recorded
(:mod:`dgl_emu.data.checksums`), and later loads are verified against them.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional

from .checksums import accepted_digests, atomic_write, record
from .datasets import DATASETS, ChecksumError, DatasetInfo, data_root
from .io import PathLike

__all__ = ["download"]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _members(archive: bytes, names: Dict[str, str]) -> Dict[str, bytes]:
    """``{file name: bytes}`` of the archive members ``names`` (``{file name: member path}``)."""
    out = {}
    if archive[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            for fname, member in names.items():
                out[fname] = zf.read(member)
        return out
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for fname, member in names.items():
            handle = tar.extractfile(member)
            if handle is None:
                raise OSError(f"archive member {member} is not a file")
            out[fname] = handle.read()
    return out


def _target_name(info: DatasetInfo, split: str, member: str) -> str:
    """The registered file name an archive member is stored under."""
    base = Path(member).name
    return base if base in info.files[split] else next(iter(info.files[split]))


def _from_source(info: DatasetInfo, fetch: Callable[[str], bytes]) -> Dict[str, bytes]:
    source = info.source
    if "archive" not in source:
        return {f"{split}.txt": fetch(f"{source['base_url']}/{split}.txt") for split in info.files}
    archive = fetch(str(source["archive"]))
    digest = hashlib.sha256(archive).hexdigest()
    expected = source.get("sha256")
    if expected and digest != expected:
        raise ChecksumError(f"{source['archive']}: sha256 {digest} != {expected}")
    names = {_target_name(info, split, member): member for split, member in dict(source["members"]).items()}
    names.update(dict(source.get("extra", {})))
    return _members(archive, names)


def _from_mirror(info: DatasetInfo, mirror: str, fetch: Callable[[str], bytes]) -> Dict[str, bytes]:
    blobs: Dict[str, bytes] = {}
    wanted = [list(files) for files in info.files.values()] + [[f] for f in dict(info.source.get("extra", {}))]
    for names in wanted:
        errors = []
        for fname in names:
            try:
                blobs[fname] = fetch(f"{mirror.rstrip('/')}/{info.name}/{fname}")
                break
            except OSError as e:
                errors.append(f"{fname}: {e}")
        else:
            raise OSError(f"mirror {mirror}: could not fetch {names[0]} of {info.name} ({'; '.join(errors)})")
    return blobs


def download(name: str, data_dir: Optional[PathLike] = None, *, mirror: Optional[str] = None,
             fetch: Callable[[str], bytes] = _fetch) -> Path:
    """Download a registered dataset into ``data_root(data_dir)/NAME`` and verify checksums.

    Parameters
    ----------
    name : str
        Registry name.
    data_dir : path-like, optional
        Root to download into (see :func:`~dgl_emu.data.data_root`).
    mirror : str, optional
        Base URL of a mirror laid out like the data root (``MIRROR/NAME/train.txt`` or
        ``.txt.gz``), tried instead of the canonical source.
    fetch : callable
        ``url -> bytes``; defaults to :func:`urllib.request.urlopen`.

    Returns
    -------
    Path
        The dataset directory.

    Raises
    ------
    ChecksumError
        A file (or the archive) whose sha256 matches no registered (or recorded) checksum;
        nothing is written then.
    """
    info = DATASETS.get(name)
    directory = data_root(data_dir) / info.name
    directory.mkdir(parents=True, exist_ok=True)
    blobs = _from_mirror(info, mirror, fetch) if mirror else _from_source(info, fetch)
    new = {}
    for fname, data in blobs.items():
        split = next((s for s, files in info.files.items() if fname in files), None)
        if split is None:  # an extra file (e.g. OGB's node count): recorded with the others
            accepted = accepted_digests(info.name, fname, [])
        else:
            accepted = accepted_digests(info.name, fname, info.files[split][fname])
        digest = hashlib.sha256(data).hexdigest()
        if accepted and digest not in accepted:
            raise ChecksumError(f"{info.name}/{fname}: downloaded sha256 {digest} matches no "
                                f"registered checksum")
        if not accepted:
            new[fname] = digest
    for fname, data in blobs.items():
        atomic_write(directory / fname, data)
    for fname, digest in new.items():  # trust on first use: later loads are checked against these
        record(info.name, fname, digest, how="first download", path=directory / fname)
    return directory

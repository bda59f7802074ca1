"""The dataset registry: known benchmarks, where their files live, checksums and downloads.

Resolution order for a dataset's directory ``ROOT/NAME``: an explicit ``data_dir``, then the
``DGL_EMU_DATA`` environment variable, then the user cache ``$XDG_CACHE_HOME/dgl-emu/datasets``
(``~/.cache/dgl-emu/datasets``). Nothing is downloaded unless :func:`download` is called.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..registry import Registry
from .generated import generate_cyclic_kg
from .io import PathLike
from .knowledge_graph import KnowledgeGraph, UnseenEntityPolicy

__all__ = ["DatasetInfo", "DATASETS", "SYNTHETIC", "data_root", "dataset_dir", "load_dataset",
           "verify", "download", "DatasetNotFoundError", "ChecksumError"]

SYNTHETIC = "synthetic"


class DatasetNotFoundError(FileNotFoundError):
    """A registered dataset's files are not in the resolved directory."""


class ChecksumError(ValueError):
    """A file's sha256 matches none of the registered checksums."""


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of a registered benchmark.

    Attributes
    ----------
    name : str
        Registry name (``"fb15k-237"``), also the folder name under the data root.
    title, citation, homepage, note : str
        Human-readable facts.
    counts : dict of str to int
        Expected ``entities``, ``relations``, ``train``, ``valid``, ``test``.
    files : dict
        Split to ``{file name: [accepted sha256, ...]}``; any one listed file suffices.
    source : dict
        Canonical download: ``{"base_url": URL}`` (``URL/split.txt``) or
        ``{"archive": URL, "sha256": ..., "members": {split: member}}``.
    """

    name: str
    title: str
    citation: str
    homepage: str
    counts: Dict[str, int]
    files: Dict[str, Dict[str, List[str]]]
    source: Dict[str, object]
    note: str = ""


def _load_registry() -> Registry:
    reg: Registry = Registry("dataset")
    text = resources.files("dgl_emu._datasets").joinpath("registry.json").read_text("utf-8")
    for name, meta in json.loads(text).items():
        reg.register(name)(DatasetInfo(name=name, **meta))
    return reg


#: registered benchmarks by name, :class:`DatasetInfo` each (from ``datasets/registry.json``)
DATASETS: Registry = _load_registry()


def data_root(data_dir: Optional[PathLike] = None) -> Path:
    """The directory holding one folder per dataset (see module docstring for the order)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("DGL_EMU_DATA"):
        return Path(os.environ["DGL_EMU_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dgl-emu" / "datasets"


def _present_file(info: DatasetInfo, directory: Path, split: str) -> Optional[Path]:
    for fname in info.files[split]:
        if (directory / fname).exists():
            return directory / fname
    return None


def dataset_dir(name: str, data_dir: Optional[PathLike] = None) -> Path:
    """The directory of a registered dataset, checked to hold every split.

    Raises
    ------
    DatasetNotFoundError
        With where the files were looked for and how to get them.
    """
    info = DATASETS.get(name)
    directory = data_root(data_dir) / info.name
    missing = [s for s in info.files if _present_file(info, directory, s) is None]
    if missing:
        wanted = ", ".join(next(iter(info.files[s])) for s in missing)
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: missing {wanted} in {directory}. Put the files there, pass "
            f"--data-dir / set DGL_EMU_DATA to a folder holding '{info.name}/', or run "
            f"'dgl-emu datasets download {info.name}' (needs internet).")
    return directory


def is_present(name: str, data_dir: Optional[PathLike] = None) -> bool:
    """Whether every split of ``name`` is found under the resolved data root."""
    try:
        dataset_dir(name, data_dir)
        return True
    except DatasetNotFoundError:
        return False


def load_dataset(name: str, data_dir: Optional[PathLike] = None, *,
                 unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
                 check: bool = True, seed: int = 0) -> KnowledgeGraph:
    """Load a registered dataset, or ``"synthetic"`` (generated from ``seed``, no files).

    Parameters
    ----------
    name : str
        A registry name (case, ``-`` and ``_`` ignored) or ``"synthetic"``.
    data_dir : path-like, optional
        Root holding ``NAME/`` folders; see :func:`data_root`.
    unseen : UnseenEntityPolicy
        Policy for valid/test triples with entities absent from training.
    check : bool
        Verify the files' sha256 checksums against the registry first (default). A file's digest
        is cached by its path, size and modification time (:func:`verified_digest`), so only new
        or changed files are hashed again. A registered name with other files must not train
        under that name: load them with :meth:`KnowledgeGraph.from_files` instead.
    seed : int
        Seed of the synthetic graph.

    Examples
    --------
    >>> load_dataset("synthetic").statistics()["entities"]
    384
    """
    if name.lower() == SYNTHETIC:
        return generate_cyclic_kg(seed=seed)
    info = DATASETS.get(name)
    directory = dataset_dir(name, data_dir)
    if check:
        verify(name, data_dir)
    kg = KnowledgeGraph.from_files(*(_present_file(info, directory, s) for s in ("train", "valid", "test")),
                                   name=info.name, unseen=unseen)
    return kg


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest_cache() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dgl-emu" / "sha256.json"


def verified_digest(path: Path) -> str:
    """The sha256 of ``path``, cached in ``$XDG_CACHE_HOME/dgl-emu/sha256.json`` by absolute path,
    size and modification time (a file that changes gets hashed again; an unwritable cache is
    simply not used)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = _digest_cache()
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    digest = _sha256(path)
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{path}|")}
    cache[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(cache_file, json.dumps(cache, indent=0).encode("utf-8"))
    except OSError:
        pass
    return digest


def verify(name: str, data_dir: Optional[PathLike] = None, *, cached: bool = True) -> Dict[str, str]:
    """Check every split file of ``name`` against the registered sha256 values.

    ``cached=False`` hashes every file again instead of trusting :func:`verified_digest`'s cache.

    Returns
    -------
    dict of str to str
        Split to the verified file name.

    Raises
    ------
    ChecksumError
        Naming the file and its actual checksum.
    """
    info = DATASETS.get(name)
    directory = dataset_dir(name, data_dir)
    out = {}
    for split in info.files:
        path = _present_file(info, directory, split)
        digest = verified_digest(path) if cached else _sha256(path)
        if digest not in info.files[split][path.name]:
            raise ChecksumError(f"{path}: sha256 {digest} matches no registered checksum of "
                                f"{info.name}/{path.name}: the file was changed. Restore it ('dgl-emu "
                                f"datasets download {info.name}'), or train on your copy as custom "
                                f"files (--train/--valid/--test)")
        out[split] = path.name
    return out


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def download(name: str, data_dir: Optional[PathLike] = None, *, mirror: Optional[str] = None,
             fetch: Callable[[str], bytes] = _fetch) -> Path:
    """Download a registered dataset into ``data_root(data_dir)/NAME`` and verify checksums.

    Parameters
    ----------
    name : str
        Registry name.
    data_dir : path-like, optional
        Root to download into (see :func:`data_root`).
    mirror : str, optional
        Base URL of a mirror laid out like the data root (``MIRROR/NAME/train.txt`` or
        ``.txt.gz``), tried instead of the canonical source.
    fetch : callable
        ``url -> bytes``; defaults to :func:`urllib.request.urlopen`.

    Returns
    -------
    Path
        The dataset directory. Each file is verified before it is moved into place, so a failed
        download leaves no partial file.
    """
    info = DATASETS.get(name)
    directory = data_root(data_dir) / info.name
    directory.mkdir(parents=True, exist_ok=True)
    blobs: Dict[str, bytes] = {}
    if mirror:
        for split, files in info.files.items():
            errors = []
            for fname in files:
                try:
                    blobs[fname] = fetch(f"{mirror.rstrip('/')}/{info.name}/{fname}")
                    break
                except OSError as e:
                    errors.append(f"{fname}: {e}")
            else:
                raise OSError(f"mirror {mirror}: could not fetch {split} of {info.name} ({'; '.join(errors)})")
    elif "archive" in info.source:
        archive = fetch(str(info.source["archive"]))
        digest = hashlib.sha256(archive).hexdigest()
        if digest != info.source["sha256"]:
            raise ChecksumError(f"{info.source['archive']}: sha256 {digest} != {info.source['sha256']}")
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for split, member in dict(info.source["members"]).items():
                blobs[f"{split}.txt"] = tar.extractfile(member).read()
    else:
        for split in info.files:
            blobs[f"{split}.txt"] = fetch(f"{info.source['base_url']}/{split}.txt")
    for fname, data in blobs.items():
        split = fname.split(".")[0]
        digest = hashlib.sha256(data).hexdigest()
        if digest not in info.files[split][fname]:
            raise ChecksumError(f"{info.name}/{fname}: downloaded sha256 {digest} matches no "
                                f"registered checksum")
    for fname, data in blobs.items():
        _atomic_write(directory / fname, data)
    return directory



"""The dataset registry: known benchmarks, where their files live, checksums and downloads.

Resolution order for a dataset's directory ``ROOT/NAME``: an explicit ``data_dir``, then the
``DGL_EMU_DATA`` environment variable, then the user cache ``$XDG_CACHE_HOME/dgl-emu/datasets``
(``~/.cache/dgl-emu/datasets``). Nothing is downloaded unless :func:`download` is called.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional

from ..registry import Registry
from .cache import cached_load
from .checksums import accepted_digests, record, sha256_of, verified_digest
from .formats import FORMATS
from .generated import generate_cyclic_kg
from .io import PathLike
from .knowledge_graph import KnowledgeGraph, UnseenEntityPolicy

__all__ = ["DatasetInfo", "DATASETS", "SYNTHETIC", "data_root", "dataset_dir", "dataset_files", "load_dataset",
           "verify", "DatasetNotFoundError", "ChecksumError", "is_present", "GENERATED"]

SYNTHETIC = "synthetic"
#: the name of the large generated graph (:func:`~dgl_emu.data.generate_large_kg`; sizes from ``data.*``)
GENERATED = "generated"


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
        Split to ``{file name: [accepted sha256, ...]}``; any one listed file suffices. An empty
        list: no registered checksum, the first download's is recorded (:attr:`checksums`).
    source : dict
        Canonical download: ``{"base_url": URL}`` (``URL/split.txt``) or
        ``{"archive": URL, "sha256": ... (optional), "members": {split: member}, "extra":
        {file name: member}}`` (tar or zip).
    format : str
        The file format, a name in :data:`~dgl_emu.data.formats.FORMATS` (``tsv``: labelled
        triples; ``ogbl-wikikg2``: OGB's split dictionaries).
    """

    name: str
    title: str
    citation: str
    homepage: str
    counts: Dict[str, int]
    files: Dict[str, Dict[str, List[str]]]
    source: Dict[str, object]
    note: str = ""
    format: str = "tsv"

    @property
    def checksums(self) -> str:
        """``"registered"``, or ``"recorded at first download"`` (trust on first use)."""
        if all(sums for files in self.files.values() for sums in files.values()):
            return "registered"
        return "recorded at first download"


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


def dataset_files(name: str, data_dir: Optional[PathLike] = None) -> Dict[str, Path]:
    """The files a registered dataset is read from: its split files (by split name) and the extra
    files of its format (by file name), resolved to absolute paths.

    Raises
    ------
    DatasetNotFoundError
        As :func:`dataset_dir`.
    """
    info = DATASETS.get(name)
    directory = dataset_dir(name, data_dir).resolve()
    files = {s: _present_file(info, directory, s) for s in info.files}
    for fname in dict(info.source.get("extra") or {}):
        if (directory / fname).exists():
            files[fname] = directory / fname
    return files


def is_present(name: str, data_dir: Optional[PathLike] = None) -> bool:
    """Whether every split of ``name`` is found under the resolved data root."""
    try:
        dataset_dir(name, data_dir)
        return True
    except DatasetNotFoundError:
        return False


def load_dataset(name: str, data_dir: Optional[PathLike] = None, *,
                 unseen: UnseenEntityPolicy = UnseenEntityPolicy.KEEP,
                 check: bool = True, seed: int = 0, cache: bool = False) -> KnowledgeGraph:
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
        is cached by its file identity, size, modification and change time
        (:func:`verified_digest`), so only new or changed files are hashed again. A registered
        name with other files must not train under that name: load them with
        :meth:`KnowledgeGraph.from_files` instead.
    seed : int
        Seed of the synthetic graph.
    cache : bool
        Read the parsed ids from the binary cache (:mod:`~dgl_emu.data.cache`) when the files are
        unchanged, and keep them there after parsing (labelled formats).

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
    files = {s: _present_file(info, directory, s) for s in info.files}

    def parse() -> KnowledgeGraph:
        return FORMATS.get(info.format)(info, directory, files, unseen)

    if cache and info.format == "tsv":
        return cached_load(f"dataset:{info.name}", {"unseen": unseen.value}, files, parse, name=info.name)
    return parse()


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
        digest = verified_digest(path) if cached else sha256_of(path)
        accepted = accepted_digests(info.name, path.name, info.files[split][path.name])
        if not accepted:  # no registered checksum and never downloaded here: trust on first use
            record(info.name, path.name, digest, how="first load", path=path.resolve())
            accepted = [digest]
        if digest not in accepted:
            raise ChecksumError(f"{path}: sha256 {digest} matches no registered checksum of "
                                f"{info.name}/{path.name}: the file was changed. Restore it ('dgl-emu "
                                f"datasets download {info.name}'), or train on your copy as custom "
                                f"files (--train/--valid/--test)")
        out[split] = path.name
    return out



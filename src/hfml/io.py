"""Reading and writing candidate tables: O2 ROOT files and parquet.

ROOT files are read the way O2Physics writes them: every key that starts with
``DF_`` is a folder holding the tree; other top-level keys (``metaData``,
``parentFiles``) are ignored, and of several cycles of a key the highest is
taken.  Reading is chunked, so memory stays bounded whatever the file size.
"""

import contextlib
import datetime
import glob
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import uproot

from hfml.errors import ConfigError, InputError, nearest
from hfml.o2 import DF_PREFIX, KNOWN_BRANCHES

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
ROOT_MAGIC = b"root"


def is_parquet(path: str | os.PathLike) -> bool:
    return str(path).endswith(PARQUET_SUFFIXES)


LIST_SUFFIX = ".txt"
"""Inputs ending in this suffix are lists of files, one path per line."""


def resolve_inputs(patterns: Sequence[str], key: str) -> list[str]:
    """Expand paths, glob patterns and file lists into a sorted list of
    unique files.

    An entry ending in ``.txt`` is a list of files as Grid catalogues give
    them: one path or glob pattern per line, relative ones from the list's
    folder; blank lines and lines starting with ``#`` are skipped.  ``key``
    names the configuration key the entries come from, for errors.  A file
    reached through two spellings (relative and absolute, or by a pattern
    and a list) is kept once, under the first.
    """
    files: dict[str, str] = {}
    for i, pattern in enumerate(patterns):
        where = f"config key '{key}[{i}]'"
        if pattern.endswith(LIST_SUFFIX):
            found = _listed(Path(os.path.expanduser(pattern)), where)
        else:
            found = _matched(os.path.expanduser(pattern), where)
        for path in found:
            files.setdefault(os.path.abspath(path), path)
    return sorted(files.values())


def _matched(pattern: str, where: str) -> list[str]:
    if glob.has_magic(pattern):
        matched = [m for m in glob.glob(pattern, recursive=True) if Path(m).is_file()]
    else:
        # A plain path needs no directory scan (lists hold thousands of them).
        matched = [pattern] if os.path.isfile(pattern) else []
    if not matched:
        raise ConfigError(f"{where}: no file matches {pattern!r}")
    return matched


def _listed(listing: Path, where: str) -> list[str]:
    try:
        lines = listing.read_text().splitlines()
    except OSError as err:
        raise ConfigError(
            f"{where}: cannot read the file list {str(listing)!r}: {err}"
        ) from err
    files = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = os.path.join(listing.parent, os.path.expanduser(line))
        files += _matched(path, f"{where}: {str(listing)!r} line {number}")
    if not files:
        raise ConfigError(f"{where}: the file list {str(listing)!r} names no file")
    return files


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"input file {path!r} does not exist")
    if not os.path.isfile(path):
        raise InputError(f"input file {path!r} is not a regular file")


def open_root(path: str) -> uproot.ReadOnlyDirectory:
    """Open a ROOT file, failing clearly if it is missing, not ROOT or truncated."""
    _check_file(path)
    with open(path, "rb") as stream:
        magic = stream.read(len(ROOT_MAGIC))
    if magic != ROOT_MAGIC:
        raise InputError(
            f"{path!r} is not a ROOT file (it starts with {magic!r}, "
            f"expected {ROOT_MAGIC!r}); use a .parquet suffix for parquet files"
        )
    try:
        root = uproot.open(path)
    except (OSError, ValueError, uproot.deserialization.DeserializationError) as err:
        raise InputError(f"cannot open ROOT file {path!r}: {err}") from err
    size = os.path.getsize(path)
    if root.file.fEND > size:
        root.close()
        raise InputError(
            f"ROOT file {path!r} is truncated: its header says {root.file.fEND} "
            f"bytes, the file has {size}"
        )
    return root


def dataframe_folders(root: uproot.ReadOnlyDirectory) -> list[str]:
    """Names of the ``DF_*`` folders, in the order they were written."""
    return [
        key
        for key in root.keys(recursive=False, cycle=False)
        if key.startswith(DF_PREFIX)
    ]


def _tree(root: uproot.ReadOnlyDirectory, folder: str, tree: str, path: str):
    directory = root[folder]
    names = directory.keys(recursive=False, cycle=False)
    if tree not in names:
        raise InputError(
            f"{path!r}: folder {folder!r} has no tree {tree!r}"
            f"{nearest(tree, names)} (it holds {', '.join(names) or 'nothing'})"
        )
    return directory[tree]


def _dtype_of(branch) -> np.dtype | None:
    interpretation = branch.interpretation
    if not isinstance(interpretation, uproot.AsDtype):
        return None
    dtype = np.dtype(interpretation.to_dtype)
    if dtype.shape or dtype.kind not in "biuf":
        return None
    return dtype.newbyteorder("=")


def check_branches(
    available: Mapping[str, np.dtype | None],
    wanted: Iterable[str],
    tree: str,
    where: str,
) -> None:
    """Check that every wanted branch exists and holds numeric scalars.

    Branches of a tree hfml knows must have their documented type.
    """
    documented = KNOWN_BRANCHES.get(tree, {})
    for name in wanted:
        if name not in available:
            raise InputError(
                f"{where}: tree {tree!r} has no branch {name!r}"
                f"{nearest(name, available)}"
            )
        found = available[name]
        expected = documented.get(name)
        if found is None:
            raise InputError(
                f"{where}: branch {name!r} of tree {tree!r} is not a numeric scalar"
                f" column; expected {expected or 'a number per candidate'}"
            )
        if expected is not None and found != expected:
            raise InputError(
                f"{where}: branch {name!r} of tree {tree!r} holds {found}, "
                f"expected {expected} as written by O2Physics"
            )


def tree_branches(path: str, tree: str) -> dict[str, np.dtype | None]:
    """Branch name to dtype (None if not a numeric scalar) of a file's table.

    For ROOT files the first ``DF_*`` folder is used.
    """
    if is_parquet(path):
        _check_file(path)
        schema = _parquet_file(path).schema_arrow
        return {f.name: _arrow_dtype(f.type) for f in schema}
    with open_root(path) as root:
        folders = dataframe_folders(root)
        if not folders:
            raise InputError(f"{path!r} holds no {DF_PREFIX}* folder")
        branches = _tree(root, folders[0], tree, path).branches
        return {b.name: _dtype_of(b) for b in branches}


def _arrow_dtype(arrow_type: pa.DataType) -> np.dtype | None:
    try:
        dtype = np.dtype(arrow_type.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return None
    return dtype if dtype.kind in "biuf" else None


def _parquet_file(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"cannot read parquet file {path!r}: {err}") from err


def iterate(
    path: str,
    tree: str,
    branches: Sequence[str],
    chunk_size: int,
    positions: bool = False,
) -> Iterator[pd.DataFrame]:
    """Yield the requested branches of a file in chunks of about ``chunk_size`` rows.

    Small ``DF_*`` trees are gathered into one chunk; a large tree is split.
    Every chunk, and at least one (possibly empty) chunk, is yielded with the
    branches' own dtypes; with ``positions``, also ``df`` (the number of the
    candidate's DF_ folder) and ``entry`` (its entry there); for parquet
    inputs -1 and the row number.
    """
    reader = _iterate_parquet if is_parquet(path) else _iterate_root
    pending: list[pd.DataFrame] = []
    rows = 0
    for chunk in reader(path, tree, list(branches), chunk_size, positions):
        pending.append(chunk)
        rows += len(chunk)
        if rows >= chunk_size:
            yield _concat(pending)
            pending, rows = [], 0
    if pending:
        yield _concat(pending)


def iterate_files(
    paths: Sequence[str], tree: str, branches: Sequence[str], chunk_size: int
) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(path, chunk)`` of every file in turn, read by :func:`iterate` with
    positions."""
    for path in paths:
        for chunk in iterate(path, tree, branches, chunk_size, positions=True):
            yield path, chunk


def non_finite(
    chunk: pd.DataFrame, columns: Sequence[str], path: str, tree: str, policy: str
) -> np.ndarray:
    """Rows of ``chunk`` (read with positions) with a NaN or infinite value in
    ``columns``; with ``policy`` 'error' (``inputs.non_finite``), any such row
    is an :class:`InputError` saying how many values of each branch and where."""
    bad = np.zeros(len(chunk), bool)
    found = []
    for column in dict.fromkeys(columns):
        values = chunk[column].to_numpy()
        if values.dtype.kind != "f":
            continue
        rows = ~np.isfinite(values)
        if rows.any():
            bad |= rows
            kinds = {
                "NaN": np.isnan(values).sum(),
                "+inf": np.isposinf(values).sum(),
                "-inf": np.isneginf(values).sum(),
            }
            found.append(
                f"{column}: " + ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
            )
    if found and policy == "error":
        first = chunk.loc[bad, ["df", "entry"]].head(3).itertuples(index=False)
        where = ", ".join(
            f"DF_{df}/{tree} entry {entry}" if df >= 0 else f"row {entry}"
            for df, entry in first
        )
        raise InputError(
            f"input file {path!r}: {int(bad.sum())} of the {len(chunk)} candidates "
            f"of a chunk have NaN or infinite values ({'; '.join(found)}; first "
            f"at {where}); expected finite "
            "features, mass and pT. Set config key 'inputs.non_finite' to 'drop' "
            "to leave such candidates out (they are counted)"
        )
    return bad


_END = object()


@contextlib.contextmanager
def read_ahead(items: Iterable) -> Iterator[Iterator]:
    """Iterate over ``items`` while the next one is produced in a background
    thread; the first one is being produced as soon as the context is entered.

    For chunk readers: reading (decompression, much of it outside the GIL)
    overlaps with the caller's work, its start-up included, and at most one
    chunk waits in memory.  An exception of the reader is raised where the
    item would have been.  On leaving, a read under way is waited for and the
    reader closed.
    """
    from concurrent.futures import ThreadPoolExecutor

    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfml-read")
    pending = [pool.submit(next, source, _END)]

    def drain() -> Iterator:
        while (item := pending[0].result()) is not _END:
            pending[0] = pool.submit(next, source, _END)
            yield item

    try:
        yield drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(source, "close"):
            source.close()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _positions(frame: pd.DataFrame, folder: int, start: int) -> pd.DataFrame:
    frame["df"] = np.full(len(frame), folder, np.int64)
    frame["entry"] = np.arange(start, start + len(frame), dtype=np.int64)
    return frame


def _folder_number(folder: str) -> int:
    digits = folder.removeprefix(DF_PREFIX)
    return int(digits) if digits.isdigit() else -1


def _iterate_root(
    path: str, tree: str, branches: list[str], chunk_size: int, positions: bool
) -> Iterator[pd.DataFrame]:
    with open_root(path) as root:
        folders = dataframe_folders(root)
        if not folders:
            raise InputError(f"{path!r} holds no {DF_PREFIX}* folder")
        for folder in folders:
            where = f"{path!r} ({folder})"
            ttree = _tree(root, folder, tree, path)
            available = {b.name: _dtype_of(b) for b in ttree.branches}
            check_branches(available, branches, tree, where)
            number, start = _folder_number(folder), 0
            if ttree.num_entries == 0:
                empty = pd.DataFrame({b: np.empty(0, available[b]) for b in branches})
                yield _positions(empty, number, 0) if positions else empty
                continue
            try:
                for arrays in ttree.iterate(
                    branches, step_size=chunk_size, library="np"
                ):
                    frame = pd.DataFrame({b: arrays[b] for b in branches})
                    if positions:
                        _positions(frame, number, start)
                    start += len(frame)
                    yield frame
            except (
                OSError,
                ValueError,
                uproot.deserialization.DeserializationError,
            ) as err:
                raise InputError(f"cannot read {where}: {err}") from err


def _iterate_parquet(
    path: str, tree: str, branches: list[str], chunk_size: int, positions: bool
) -> Iterator[pd.DataFrame]:
    _check_file(path)
    parquet = _parquet_file(path)
    schema = parquet.schema_arrow
    available = {f.name: _arrow_dtype(f.type) for f in schema}
    check_branches(available, branches, tree, repr(path))
    start = 0
    try:
        for batch in parquet.iter_batches(batch_size=chunk_size, columns=branches):
            frame = batch.to_pandas()
            yield _positions(frame, -1, start) if positions else frame
            start += len(frame)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"cannot read parquet file {path!r}: {err}") from err
    if start == 0:
        frame = schema.empty_table().select(branches).to_pandas()
        yield _positions(frame, -1, 0) if positions else frame


WRITE_DATE = datetime.datetime(2025, 1, 1)
"""Date stamped into files written with an ``identity``."""

_UPROOT_WRITERS = ("_cascade", "_cascadetree", "_cascadentuple", "writable")
_STAMPING = threading.RLock()


@contextlib.contextmanager
def _stamped(identity: str) -> Iterator[Callable[[], uuid.UUID]]:
    """UUIDs from ``identity`` and :data:`WRITE_DATE` for files uproot writes.

    uproot stamps every key and directory with the time of writing, and the
    file with a random UUID, so that the same content never gives the same
    bytes twice.  Within this context its writers see a clock stopped at
    :data:`WRITE_DATE`; the UUIDs come from the returned function.
    """

    class _Stopped(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return WRITE_DATE

    clock = SimpleNamespace(**vars(datetime))
    clock.datetime = _Stopped
    modules = [getattr(uproot.writing, name, None) for name in _UPROOT_WRITERS]
    patched = [m for m in modules if getattr(m, "datetime", None) is datetime]
    if not patched:
        log.warning(
            "uproot %s no longer takes the time from the modules %s: ROOT "
            "files will carry the time of writing, so reruns give other bytes",
            uproot.__version__,
            ", ".join(f"uproot.writing.{name}" for name in _UPROOT_WRITERS),
        )
    counter = itertools.count()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "hfml")

    def uuids() -> uuid.UUID:
        return uuid.uuid5(namespace, f"{identity}/{next(counter)}")

    with _STAMPING:  # the clock is uproot's, for every thread
        for module in patched:
            module.datetime = clock
        try:
            yield uuids
        finally:
            for module in patched:
                module.datetime = datetime


@contextlib.contextmanager
def recreate_root(path: str | os.PathLike, identity: str | None = None):
    """``uproot.recreate(path)``; with an ``identity``, the file's UUIDs derive
    from it and its dates are :data:`WRITE_DATE`, so that the same content and
    identity give the same bytes."""
    stamps = _stamped(identity) if identity else contextlib.nullcontext(None)
    with stamps as uuids:
        options = {"uuid_function": uuids} if uuids else {}
        with uproot.recreate(path, **options) as out:
            yield out


def write_o2_file(
    path: str | os.PathLike,
    frames: Mapping[str, Mapping[str, np.ndarray]],
    tree: str,
    types: Mapping[str, np.dtype],
    metadata: str = "",
    identity: str | None = None,
) -> None:
    """Write ``{folder: {branch: array}}`` as an O2 file of TTrees.

    Each folder (``DF_<n>``) holds one tree with the branches of ``types``, in
    that order.  A top-level ``metaData`` string is written as real files have.
    For ``identity``, see :func:`recreate_root`.
    """
    with recreate_root(path, identity) as out:
        out["metaData"] = metadata
        for folder, arrays in frames.items():
            ttree = out.mktree(f"{folder}/{tree}", dict(types))
            ttree.extend(
                {name: np.asarray(arrays[name], types[name]) for name in types}
            )

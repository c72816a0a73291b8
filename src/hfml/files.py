"""Output files that appear complete or not at all.

Every output is written under its own name inside a temporary folder next to
it (``.<name>.<random>.tmp/<name>``) and moved into place once complete, so
that a killed job never leaves a complete-looking file, and formats that
record their own file name (ROOT does) record the final one.  Temporary
folders that a killed job left are removed when the output is next written.
"""

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def _temporary_name(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in glob.glob(glob.escape(str(path.parent / prefix)) + "*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    return Path(folder) / path.name


@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[Sequence[Path]]:
    """Yield temporary paths for ``paths``; move them all into place on success.

    On an exception every temporary file is removed and no output is left.
    """
    finals = [Path(p) for p in paths]
    temporaries: list[Path] = []
    moved: list[Path] = []
    try:
        temporaries = [_temporary_name(p) for p in finals]
        yield temporaries
        for temporary, final in zip(temporaries, finals, strict=True):
            temporary.replace(final)
            moved.append(final)
    except BaseException:
        for final in moved:
            final.unlink(missing_ok=True)
        raise
    finally:
        for temporary in temporaries:
            shutil.rmtree(temporary.parent, ignore_errors=True)


def json_text(payload: Any) -> str:
    """Indented JSON with sorted keys, so that equal content gives equal bytes."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as JSON, atomically."""
    with atomic_outputs(path) as (temporary,):
        temporary.write_text(json_text(payload))

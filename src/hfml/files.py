"""Output files that appear complete or not at all.

Every output is written under a temporary name in its final folder and renamed
once complete, so that a killed job never leaves a complete-looking file.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _temporary_name(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    os.close(handle)
    os.chmod(name, 0o666 & ~_UMASK)
    return Path(name)


@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[Sequence[Path]]:
    """Yield temporary paths for ``paths``; rename them all only on success.

    On an exception every temporary file is removed and no output is left.
    """
    finals = [Path(p) for p in paths]
    temporaries: list[Path] = []
    try:
        temporaries = [_temporary_name(p) for p in finals]
        yield temporaries
        for temporary, final in zip(temporaries, finals, strict=True):
            temporary.replace(final)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise


def json_text(payload: Any) -> str:
    """Indented JSON with sorted keys, so that equal content gives equal bytes."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as JSON, atomically."""
    with atomic_outputs(path) as (temporary,):
        temporary.write_text(json_text(payload))

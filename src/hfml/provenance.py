"""Where a result came from.

Every model, ONNX file and summary carries a provenance record:

* ``config``: the SHA-256 of the configuration sections the result depends on
  (as resolved, defaults included) and the names of those sections;
* ``inputs``: the input files with their sizes and XXH3-128 checksums, and a
  digest of the whole list.  Each file is hashed once, by the skim job that
  reads it; results downstream copy the records.  Lists longer than
  :data:`MAX_LISTED` files keep only the digest, count and size;
* ``software``: hfml's version and git commit (when it runs from a git
  checkout), the Python version and the versions of the packages that shape
  the results.

A record holds no time stamps, so that two runs of the same configuration on
the same inputs with the same software write identical files.
"""

import functools
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import xxhash

from hfml import __version__
from hfml.errors import InputError

KEY = "hfml_provenance"
"""Name under which models and ONNX files store the record."""

MAX_LISTED = 1000
"""Input lists longer than this are recorded by digest, count and size."""

PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "uproot",
    "scikit-learn",
    "xgboost-cpu",
    "xgboost",
    "lightgbm",
    "optuna",
    "onnx",
    "onnxmltools",
    "onnxruntime",
    "numba",
    "iminuit",
    "snakemake",
)

_BLOCK = 8 * 2**20


def checksum(path: str | Path) -> str:
    """XXH3-128 of the file's bytes, read once in large blocks."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict:
    return {
        "path": str(path),
        "bytes": Path(path).stat().st_size,
        "xxh3_128": checksum(path),
    }


def config_hash(config: Mapping) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def inputs_record(files: Sequence[Mapping]) -> dict:
    """The input list as recorded: digest, count, size and (if short) files."""
    listing = json.dumps(list(files), sort_keys=True).encode()
    record = {
        "files": len(files),
        "bytes": sum(int(f["bytes"]) for f in files),
        "list_sha256": hashlib.sha256(listing).hexdigest(),
    }
    if len(files) <= MAX_LISTED:
        record["list"] = [dict(f) for f in files]
    return record


def _git() -> dict | None:
    """Commit of the checkout hfml runs from, if it is one."""
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(package), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if (top / "src" / "hfml").resolve() != package:
            return None
        commit = git("rev-parse", "HEAD")
        modified = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "modified": modified}


@functools.cache
def software() -> dict:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "hfml": __version__,
        "git": _git(),
        "python": platform.python_version(),
        "packages": packages,
    }


def record(config: Mapping, files: Sequence[Mapping]) -> dict:
    """The provenance of a result made with ``config`` from ``files``."""
    return {
        "config": {"sha256": config_hash(config), "sections": sorted(config)},
        "inputs": inputs_record(files),
        "software": software(),
    }


def skim_inputs(counts_path: str | Path) -> list[dict]:
    """The input file records of the workflow's skim counts."""
    return json.loads(Path(counts_path).read_text())["inputs"]


# Reading a record back, from any file that holds one.


def _from_onnx(path: Path) -> str | None:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise InputError(f"{str(path)!r} is not a readable ONNX model: {err}") from err
    return {p.key: p.value for p in model.metadata_props}.get(KEY)


def _from_lightgbm(path: Path) -> str | None:
    prefix = f"[{KEY}: "
    try:
        with open(path) as stream:
            for line in stream:
                if line.startswith(prefix):
                    return line.rstrip("\n")[len(prefix) : -1]
    except UnicodeDecodeError:  # a binary file (ROOT, parquet): no record
        pass
    return None


def _from_json(path: Path) -> str | dict | None:
    try:
        payload = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{str(path)!r} is not a JSON file: {err}") from err
    if not isinstance(payload, dict):
        return None
    if "provenance" in payload:  # hfml's own JSON outputs
        return payload["provenance"]
    learner = payload.get("learner")  # an XGBoost model
    attributes = learner.get("attributes") if isinstance(learner, dict) else None
    return attributes.get(KEY) if isinstance(attributes, dict) else None


_PARTS = ("config", "inputs", "software")


def read(path: str | Path) -> dict:
    """The provenance record stored in a model, ONNX file or summary."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{str(path)!r} does not exist")
    if path.suffix == ".onnx":
        found = _from_onnx(path)
    elif path.suffix == ".json":
        found = _from_json(path)
    else:
        found = _from_lightgbm(path)
    if found is None:
        raise InputError(
            f"{str(path)!r} holds no provenance record; hfml writes one into "
            "models (model.json, model.txt), ONNX files and summary.json"
        )
    try:
        record = json.loads(found) if isinstance(found, str) else found
    except json.JSONDecodeError as err:
        raise InputError(
            f"{str(path)!r}: its provenance record is damaged: {err}"
        ) from err
    if not isinstance(record, dict) or not set(_PARTS) <= set(record):
        raise InputError(
            f"{str(path)!r}: its provenance record lacks one of {', '.join(_PARTS)}"
        )
    return record


def describe(provenance: Mapping) -> str:
    """A record as text for people."""
    config, inputs, software = (
        provenance["config"],
        provenance["inputs"],
        provenance["software"],
    )
    git = software["git"]
    built = f"hfml {software['hfml']}"
    if git:
        built += f", git {git['commit']}" + (
            " with local changes" if git["modified"] else ""
        )
    lines = [
        f"configuration: sha256 {config['sha256']}",
        f"  sections: {', '.join(config['sections'])}",
        f"inputs: {inputs['files']} files, {inputs['bytes']} bytes, "
        f"list sha256 {inputs['list_sha256']}",
    ]
    for entry in inputs.get("list", []):
        lines.append(
            f"  {entry['path']}  {entry['bytes']} bytes  xxh3_128 {entry['xxh3_128']}"
        )
    if "list" not in inputs:
        lines.append(f"  (more than {MAX_LISTED} files: see results/skim/counts.json)")
    lines.append(f"software: {built}, Python {software['python']}")
    lines.extend(f"  {name} {v}" for name, v in software["packages"].items())
    return "\n".join(lines)

"""Helpers the Snakemake rules use to lay out inputs and outputs."""

import hashlib
import os
import re
from collections.abc import Mapping

from hfml.config import SOURCES, class_names, input_files, pt_bin_labels

TOY_FILE = "results/toy/{source}/{index:03d}/AO2D.root"

EVALUATION_PLOTS = (
    "features",
    "correlations",
    "scores",
    "roc",
    "precision_recall",
    "efficiency",
    "importance",
)
"""PNG files (without suffix) the evaluation of a pT bin writes."""


FILE_ID = r"[A-Za-z0-9_]*-[0-9a-f]+"
"""Pattern of :func:`file_id`, for wildcard constraints: a pattern, not the
list of ids, so that matching stays fast with thousands of input files."""
GROUP_ID = r"group[0-9]+"
"""Pattern of the names of :func:`apply_groups`."""


def file_id(path: str) -> str:
    """Short, stable name of an input file for output paths.

    The last two path components (Grid outputs are ``NNN/AO2D.root``) keep it
    readable; a hash of the path as given keeps it unique, and the same in
    every working directory when the path is relative to it (as the toy's
    are).
    """
    stem, _ = os.path.splitext(os.path.normpath(path))
    parts = stem.split(os.sep)[-2:]
    readable = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")
    digest = hashlib.sha1(os.path.normpath(path).encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def input_table(config: Mapping) -> dict[str, dict[str, str]]:
    """source → {file id: path} of every input file, toy or real."""
    toy = config["inputs"]["toy"]
    table: dict[str, dict[str, str]] = {}
    for source in SOURCES:
        if toy["enabled"]:
            paths = [
                TOY_FILE.format(source=source, index=i)
                for i in range(toy[source]["files"])
            ]
        else:
            paths = input_files(config, source)
        table[source] = {file_id(p): p for p in paths}
    return table


def skim_keys(config: Mapping, source: str) -> list[tuple[str, str]]:
    """(class, pT bin) of every skim output of a source, in output order."""
    labels = pt_bin_labels(config["pt_bins"])
    return [(c, b) for c in class_names(config, source) for b in labels]


def alternatives(names) -> str:
    """A wildcard constraint matching exactly the given names."""
    return "|".join(re.escape(n) for n in names)


def sections(config: Mapping, *names: str) -> dict:
    """The named top-level sections of the configuration.

    Rules pass what their job reads as ``params``, so that Snakemake reruns a
    job when, and only when, the configuration it depends on changes.
    """
    return {name: config[name] for name in names}


def apply_groups(files: Mapping[str, str], per_job: int) -> dict[str, list[str]]:
    """Data files in groups of ``per_job``, one apply job each, in path order."""
    paths = sorted(files.values())
    return {
        f"group{i // per_job:04d}": paths[i : i + per_job]
        for i in range(0, len(paths), per_job)
    }


def skim_groups(files: Mapping[str, str], per_job: int) -> dict[str, list[str]]:
    """Input files of a source in groups of ``per_job``, one skim job each;
    a job of one file is named by the file's id."""
    if per_job == 1:
        return {key: [path] for key, path in files.items()}
    return apply_groups(files, per_job)


def with_threads(config: Mapping, threads: int) -> dict:
    """The configuration with ``training.threads`` set to the threads Snakemake
    gave the job (fewer than configured when ``--cores`` is smaller)."""
    return {**config, "training": {**config["training"], "threads": threads}}

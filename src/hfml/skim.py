"""The skim stage: preselect candidates, assign classes, split by pT bin.

One skim job reads one input file in chunks and writes one parquet file per
class and pT bin; a merge job then concatenates, per class and bin, the files
of all jobs.  Counts of what was read and kept go to a JSON file and the log.
"""

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hfml.config import (
    ALWAYS_KEPT,
    class_names,
    pt_bin_labels,
    skim_columns,
    undefined_name,
)
from hfml.errors import ConfigError, InputError, nearest
from hfml.files import atomic_outputs, json_text
from hfml.io import iterate_files, non_finite, read_ahead
from hfml.o2 import bin_index
from hfml.provenance import file_record
from hfml.samples import bin_settings

log = logging.getLogger(__name__)


@dataclass
class SkimCounts:
    """What one skim job read and kept."""

    read: int = 0
    non_finite: int = 0
    preselected: int = 0
    outside_pt_bins: int = 0
    multiple_classes: int = 0
    per_class: dict = field(default_factory=dict)
    """class → bin → {"before_preselection": n, "selected": n}"""

    def as_dict(self) -> dict:
        return {
            "candidates_read": self.read,
            "non_finite": self.non_finite,
            "candidates_preselected": self.preselected,
            "outside_pt_bins": self.outside_pt_bins,
            "in_several_classes": self.multiple_classes,
            "classes": self.per_class,
        }


def reserved_for_training(
    df: np.ndarray, entry: np.ndarray, fraction: float
) -> np.ndarray:
    """Whether each data candidate is reserved for training.

    A fixed hash of the candidate's time frame (DF_ number) and entry, uniform
    in [0, 1), below ``fraction``: the same candidates wherever and however
    often the files are read, so the skim trains on exactly those the apply
    stage leaves out.  Measuring on candidates the model was trained on
    biases the background under the peak (the BDT rejects its own training
    side-band candidates better than unseen ones).
    """
    key = np.asarray(df, np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    key ^= np.asarray(entry, np.int64).astype(np.uint64)
    # splitmix64's finaliser: every input bit moves every output bit.
    key ^= key >> np.uint64(30)
    key *= np.uint64(0xBF58476D1CE4E5B9)
    key ^= key >> np.uint64(27)
    key *= np.uint64(0x94D049BB133111EB)
    key ^= key >> np.uint64(31)
    return (key >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


def query_mask(frame: pd.DataFrame, query: str, key: str) -> np.ndarray:
    if not query.strip():
        return np.ones(len(frame), bool)
    try:
        return frame.eval(query).to_numpy(bool)
    except pd.errors.UndefinedVariableError as err:
        raise ConfigError(
            f"config key {key!r}: query {query!r} cannot be evaluated: {err}"
            f"{nearest(undefined_name(err), frame.columns)}"
        ) from err


def skim_files(
    paths: Sequence[str],
    source: str,
    config: Mapping,
    outputs: Mapping[tuple[str, str], str],
    counts_path: str,
    finite: Sequence[str] | None = None,
) -> SkimCounts:
    """Skim input files of ``source`` into ``outputs[(class, ptbin)]``.

    Every candidate passing the preselection goes to the first class (in
    config order) whose query it satisfies; candidates matching several
    classes are counted and reported.  Empty classes or bins give empty,
    well-typed files.  ``finite`` are the columns that must be finite
    (default :func:`finite_columns`, which reads the training section).
    """
    start = time.perf_counter()
    classes = [c for c in config["classes"] if c["source"] == source]
    labels = pt_bin_labels(config["pt_bins"])
    read, written = skim_columns(config, source)
    expected = {(c["name"], b) for c in classes for b in labels}
    if set(outputs) != expected:
        raise ValueError(f"outputs must be given for exactly {sorted(expected)}")

    counts = SkimCounts(
        per_class={
            c["name"]: {b: {"before_preselection": 0, "selected": 0} for b in labels}
            for c in classes
        }
    )
    keys = list(outputs)
    tree = config["inputs"]["tree"]
    chunk_size = config["skim"]["chunk_size"]
    with atomic_outputs(*outputs.values(), counts_path) as temporaries:
        writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        try:
            checked = finite_columns(config) if finite is None else list(finite)
            policy = config["inputs"]["non_finite"]
            chunks = iterate_files(paths, tree, read, chunk_size)
            with read_ahead(chunks) as ahead:
                for path, chunk in ahead:
                    if not writers:
                        schema = pa.Schema.from_pandas(
                            chunk[written], preserve_index=False
                        )
                        for key, temporary in zip(keys, temporaries, strict=False):
                            writers[key] = pq.ParquetWriter(temporary, schema)
                    counts.read += len(chunk)
                    bad = non_finite(chunk, checked, path, tree, policy)
                    counts.non_finite += int(bad.sum())
                    _skim_chunk(
                        chunk, ~bad, config, classes, labels, written, counts, writers
                    )
        finally:
            for writer in writers.values():
                writer.close()
        payload = {
            "files": list(paths),
            "inputs": [file_record(path) for path in paths],
            "source": source,
            **counts.as_dict(),
        }
        temporaries[-1].write_text(json_text(payload))

    log.info(
        "%s: read %d candidates, %d with non-finite values dropped, %d pass the "
        "preselection, %d outside the pT bins (%.1f s)",
        ", ".join(paths),
        counts.read,
        counts.non_finite,
        counts.preselected,
        counts.outside_pt_bins,
        time.perf_counter() - start,
    )
    for name, bins in counts.per_class.items():
        for label, number in bins.items():
            level = logging.INFO if number["selected"] else logging.WARNING
            log.log(
                level,
                "class %s, %s: %d candidates (%d before preselection)",
                name,
                label,
                number["selected"],
                number["before_preselection"],
            )
    if counts.multiple_classes:
        log.warning(
            "%d candidates satisfy several class queries; each was given to the "
            "first of them in config order",
            counts.multiple_classes,
        )
    return counts


def finite_columns(config: Mapping) -> list[str]:
    """Columns that must be finite: every pT bin's features, mass and pT."""
    features = [
        feature
        for ptbin in pt_bin_labels(config["pt_bins"])
        for feature in bin_settings(config, ptbin)["features"]
    ]
    return list(dict.fromkeys([*features, *ALWAYS_KEPT]))


def _skim_chunk(
    chunk, finite, config, classes, labels, written, counts, writers
) -> None:
    """Count and write one chunk's candidates by class and pT bin.

    Candidates with non-finite values (``finite`` False, under the drop
    policy) count among those before the preselection but pass nothing: the
    apply stage drops them from the data too, so they are an inefficiency.
    """
    if classes[0]["source"] == "data":
        fraction = config["inputs"]["training_fraction"]
        reserved = reserved_for_training(chunk["df"], chunk["entry"], fraction)
    else:
        reserved = np.ones(len(chunk), bool)
    presel = query_mask(chunk, config["preselection"], "preselection") & finite
    counts.preselected += int(presel.sum())
    bins = bin_index(chunk["fPt"].to_numpy(), config["pt_bins"])
    counts.outside_pt_bins += int(np.sum(presel & (bins < 0)))
    taken = np.zeros(len(chunk), bool)
    for cls in classes:
        index = config["classes"].index(cls)
        in_class = query_mask(chunk, cls["query"], f"classes[{index}].query")
        counts.multiple_classes += int(np.sum(in_class & presel & taken))
        selected = in_class & presel & ~taken & reserved
        taken |= in_class & presel
        per_bin = counts.per_class[cls["name"]]
        for index, label in enumerate(labels):
            in_bin = bins == index
            per_bin[label]["before_preselection"] += int(np.sum(in_class & in_bin))
            rows = selected & in_bin
            per_bin[label]["selected"] += int(rows.sum())
            if rows.any():
                table = pa.Table.from_pandas(
                    chunk.loc[rows, written], preserve_index=False
                )
                writers[(cls["name"], label)].write_table(table)


def merge(inputs: Sequence[str], output: str) -> int:
    """Concatenate skimmed parquet files (same schema) into ``output``.

    Streams one file at a time, so memory is bounded by the largest input.
    """
    rows = 0
    with atomic_outputs(output) as (temporary,):
        writer = None
        try:
            for path in inputs:
                table = pq.read_table(path)
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                elif not table.schema.equals(writer.schema):
                    raise InputError(
                        f"{path!r} has columns {table.schema.names}, expected "
                        f"{writer.schema.names} like the other skimmed files"
                    )
                writer.write_table(table)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
    return rows


_TOTALS = (
    "candidates_read",
    "non_finite",
    "candidates_preselected",
    "outside_pt_bins",
    "in_several_classes",
)


def sum_counts(paths: Sequence[str], config: Mapping) -> dict:
    """Add up the per-file skim counts, per source, class and pT bin.

    The input file records (path, size, checksum) are listed in job order.
    """
    total: dict = {
        source: dict.fromkeys(["files", *_TOTALS], 0) for source in ("data", "mc")
    }
    labels = pt_bin_labels(config["pt_bins"])
    classes: dict = {
        name: {b: {"before_preselection": 0, "selected": 0} for b in labels}
        for name in class_names(config)
    }
    inputs = []
    for path in paths:
        counts = json.loads(Path(path).read_text())
        missing = sorted(
            {"source", "files", "inputs", "classes", *_TOTALS} - set(counts)
        )
        if missing:
            raise InputError(
                f"skim counts {path!r} lack {', '.join(missing)}: they come from an "
                "older hfml; rerun the skim (snakemake --forcerun skim_data skim_mc)"
            )
        source = total[counts["source"]]
        source["files"] += len(counts["files"])
        inputs.extend(counts["inputs"])
        for key in _TOTALS:
            source[key] += int(counts[key])
        for name, bins in counts["classes"].items():
            for label, number in bins.items():
                for key, value in number.items():
                    classes[name][label][key] += int(value)
    return {"sources": total, "classes": classes, "inputs": inputs}

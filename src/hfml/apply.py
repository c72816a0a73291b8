"""The apply stage: score data files with the per-bin ONNX models.

A job reads its files in chunks (memory stays bounded; the next chunk is
read in a background thread while the current one is scored), applies the
preselection the models were trained after, scores every candidate inside the
pT bins with :class:`~hfml.inference.MlResponse`, and writes the candidates
that pass the loose cuts (``apply.loose_cuts``, as O2Physics would select with
them), with their scores, to parquet.  Counts per bin before and after the
loose cuts go to JSON.  The working point is applied to these candidates later,
once it is chosen.
"""

import logging
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hfml.config import ALWAYS_KEPT, pt_bin_labels, query_columns
from hfml.errors import ConfigError
from hfml.files import atomic_outputs, json_text
from hfml.inference import MlResponse
from hfml.io import iterate_files, non_finite, read_ahead, tree_branches
from hfml.samples import bin_settings
from hfml.skim import finite_columns, query_mask, reserved_for_training

log = logging.getLogger(__name__)

COUNTS = (
    "candidates_read",
    "non_finite",
    "reserved_for_training",
    "candidates_preselected",
    "outside_pt_bins",
)
"""Per-job totals of the apply counts."""


def model_features(config: Mapping) -> list[str]:
    """The one feature list of all bins (O2Physics applies one to every model)."""
    lists = {
        ptbin: bin_settings(config, ptbin)["features"]
        for ptbin in pt_bin_labels(config["pt_bins"])
    }
    first = next(iter(lists.values()))
    for ptbin, features in lists.items():
        if features != first:
            raise ConfigError(
                f"config key 'training.per_bin.{ptbin}.features': O2Physics gives "
                "every pT bin's model the same namesInputFeatures, so models with "
                "different feature lists cannot be applied or deployed together"
            )
    return list(first)


def response(config: Mapping, onnx_paths: Sequence[str]) -> MlResponse:
    """O2Physics' selection with the loose cuts in every pT bin."""
    loose = [list(config["apply"]["loose_cuts"])] * (len(config["pt_bins"]) - 1)
    return MlResponse(
        onnx_paths,
        config["pt_bins"],
        loose,
        config["selection"]["cut_dirs"],
        len(config["classes"]),
        len(model_features(config)),
    )


def score_columns(config: Mapping) -> list[str]:
    return [f"score_{c['name']}" for c in config["classes"]]


def apply_files(
    config: Mapping,
    paths: Sequence[str],
    onnx_paths: Sequence[str],
    output: str,
    counts_path: str,
) -> dict:
    """Score ``paths`` and write the candidates passing the loose cuts."""
    start = time.perf_counter()
    features = model_features(config)
    kept = list(dict.fromkeys([*ALWAYS_KEPT, *config["apply"]["columns"]]))
    tree = config["inputs"]["tree"]
    labels = pt_bin_labels(config["pt_bins"])
    per_bin = {b: {"candidates": 0, "loose": 0} for b in labels}
    counts = dict.fromkeys(COUNTS, 0)
    scores_names = score_columns(config)
    # The files of a data set share one table layout: the first file's
    # decides which columns the preselection reads (iterate checks each file).
    available = tree_branches(paths[0], tree) if paths else {}
    schema = output_schema(available, kept, scores_names)
    read = list(dict.fromkeys([*features, *kept]))
    read += [
        c for c in query_columns(config["preselection"], available) if c not in read
    ]
    chunks = _candidates(
        iterate_files(paths, tree, read, config["apply"]["chunk_size"]),
        config,
        features,
    )
    with (
        atomic_outputs(output, counts_path) as (parquet, counts_file),
        read_ahead(chunks) as ahead,
    ):
        # The models load, and their kernels get ready, while the first
        # chunk is read.
        ml = response(config, onnx_paths)
        ml.warm_up()
        with pq.ParquetWriter(parquet, schema) as writer:
            for path, chunk, x, chunk_counts in ahead:
                for key, number in chunk_counts.items():
                    counts[key] += number
                bins, scores, written = ml.evaluate(x, chunk["fPt"].to_numpy())
                counts["outside_pt_bins"] += int(np.sum(bins < 0))
                in_bins = np.bincount(bins[bins >= 0], minlength=len(labels))
                loose = np.bincount(bins[written], minlength=len(labels))
                for label, number, passing in zip(labels, in_bins, loose, strict=True):
                    per_bin[label]["candidates"] += int(number)
                    per_bin[label]["loose"] += int(passing)
                frame = chunk.loc[written, ["df", "entry", *kept]].reset_index(
                    drop=True
                )
                frame.insert(0, "file", path)
                for k, name in enumerate(scores_names):
                    frame[name] = scores[written, k]
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer.write_table(table.cast(schema))
        summary = {"files": list(paths), **counts, "bins": per_bin}
        counts_file.write_text(json_text(summary))
    seconds = time.perf_counter() - start
    log.info(
        "%d files: %d candidates read, %d with non-finite values dropped, %d "
        "reserved for training, %d of the rest preselected, %d outside the pT "
        "bins (O2Physics would stop on them), in %.1f s",
        len(paths),
        counts["candidates_read"],
        counts["non_finite"],
        counts["reserved_for_training"],
        counts["candidates_preselected"],
        counts["outside_pt_bins"],
        seconds,
    )
    for label, number in per_bin.items():
        log.info(
            "%s: %d candidates, %d pass the loose cuts",
            label,
            number["candidates"],
            number["loose"],
        )
    return summary


def _candidates(
    chunks: Iterator[tuple[str, pd.DataFrame]], config: Mapping, features: list[str]
) -> Iterator[tuple[str, pd.DataFrame, np.ndarray, dict[str, int]]]:
    """The candidates of each chunk that the models score, with their features
    as float32 and the counts of what was left out.

    Part of reading: it runs in the reader thread, beside the scoring.
    """
    tree = config["inputs"]["tree"]
    policy = config["inputs"]["non_finite"]
    fraction = config["inputs"]["training_fraction"]
    checked = finite_columns(config)
    for path, chunk in chunks:
        counts = {"candidates_read": len(chunk)}
        bad = non_finite(chunk, checked, path, tree, policy)
        counts["non_finite"] = int(bad.sum())
        reserved = reserved_for_training(chunk["df"], chunk["entry"], fraction)
        counts["reserved_for_training"] = int(np.sum(reserved & ~bad))
        chunk = chunk[
            ~bad & ~reserved & query_mask(chunk, config["preselection"], "preselection")
        ]
        counts["candidates_preselected"] = len(chunk)
        yield path, chunk, chunk[features].to_numpy(np.float32), counts


def output_schema(
    types: Mapping[str, np.dtype | None], kept: Sequence[str], scores: Sequence[str]
) -> pa.Schema:
    """Columns of the apply output, the same for every job and every file."""
    fields = [("file", pa.string()), ("df", pa.int64()), ("entry", pa.int64())]
    fields += [
        (name, pa.from_numpy_dtype(types.get(name) or np.float32)) for name in kept
    ]
    fields += [(name, pa.float32()) for name in scores]
    return pa.schema(fields)


def sum_counts(paths: Sequence[str]) -> dict:
    """Add up the per-job apply counts."""
    import json
    from pathlib import Path

    total: dict = {"files": 0, **dict.fromkeys(COUNTS, 0)}
    bins: dict = {}
    for path in paths:
        counts = json.loads(Path(path).read_text())
        total["files"] += len(counts["files"])
        for key in COUNTS:
            total[key] += counts[key]
        for label, number in counts["bins"].items():
            into = bins.setdefault(label, dict.fromkeys(number, 0))
            for key, value in number.items():
                into[key] += value
    return {**total, "bins": bins}

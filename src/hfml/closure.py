"""Closure on the toy sample: measured numbers against the truth of the data.

The toy's data files come with a truth table (``truth.parquet`` beside each
``AO2D.root``: ``df``, ``entry``, MC flag, origin and decay channel of every
candidate).  Per pT bin (reconstructed pT, as everywhere else):

- the fitted raw yield is compared with the true number of candidates of the
  MC classes (prompt and non-prompt Ds+) among the selected data in the
  fitted mass range;
- each MC class's efficiency from the held-out MC is compared with its true
  efficiency in data: true candidates of the class that pass preselection and
  working point over all true candidates of the class in the data trees that
  are not reserved for training.

The MC classes' queries are evaluated on the truth with the MC branch names
(``fFlagMcMatchRec``, ``fOriginMcRec``, ``fFlagMcDecayChanRec``), so the
closure uses the same definitions as the training.
"""

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hfml.config import class_names, pt_bin_labels
from hfml.efficiency import clopper_pearson
from hfml.files import write_json
from hfml.io import iterate
from hfml.skim import query_mask, reserved_for_training

log = logging.getLogger(__name__)

TRUTH_BRANCHES = {
    "flag": "fFlagMcMatchRec",
    "origin": "fOriginMcRec",
    "channel": "fFlagMcDecayChanRec",
}
"""Truth-table columns under the names of the MC branches they stand for."""


def truth_of(path: str) -> pd.DataFrame:
    """The truth table beside a toy data file."""
    truth = Path(path).parent / "truth.parquet"
    if not truth.exists():
        raise FileNotFoundError(
            f"{str(truth)!r}: no truth table beside {path!r}; closure needs the toy"
        )
    return pd.read_parquet(truth).rename(columns=TRUTH_BRANCHES)


def true_classes(config: Mapping, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per MC class, which rows of a truth-joined frame truly belong to it."""
    return {
        c["name"]: query_mask(frame, c["query"], f"classes[{k}].query")
        for k, c in enumerate(config["classes"])
        if c["source"] == "mc"
    }


def count_truth(
    config: Mapping,
    data_paths: Sequence[str],
    candidate_paths: Sequence[str],
    cuts: Sequence[Sequence[float]],
) -> dict:
    """True candidates per bin and MC class: in the trees, and selected.

    ``candidate_paths`` are the per-bin candidates after the loose cuts, in
    bin order, and ``cuts`` the working point of every bin.
    """
    from hfml.workingpoint import selected as passing

    edges = config["pt_bins"]
    labels = pt_bin_labels(edges)
    names = class_names(config, "mc")
    in_tree = {b: dict.fromkeys(names, 0) for b in labels}
    selected = {b: dict.fromkeys([*names, "any"], 0) for b in labels}
    tree = config["inputs"]["tree"]
    fraction = config["inputs"]["training_fraction"]
    truths = {path: truth_of(path) for path in data_paths}
    for path, truth in truths.items():
        for chunk in iterate(path, tree, ["fPt"], 10**6, positions=True):
            reserved = reserved_for_training(chunk["df"], chunk["entry"], fraction)
            frame = chunk[~reserved].merge(
                truth, on=["df", "entry"], how="left", validate="1:1"
            )
            bins = np.digitize(frame["fPt"].to_numpy(), edges) - 1
            for name, mask in true_classes(config, frame).items():
                for index, label in enumerate(labels):
                    in_tree[label][name] += int(np.sum(mask & (bins == index)))
    low, high = config["fit"]["range"]
    for label, path, row in zip(labels, candidate_paths, cuts, strict=True):
        frame = pd.read_parquet(path)
        masses = frame["fM"].to_numpy(np.float64)  # compared as in the fit
        chosen = frame[passing(config, frame, row) & (masses >= low) & (masses < high)]
        for file, rows in chosen.groupby("file"):
            if file not in truths:
                truths[file] = truth_of(file)
            masks = true_classes(
                config, rows.merge(truths[file], on=["df", "entry"], how="left")
            )
            for name, mask in masks.items():
                selected[label][name] += int(np.sum(mask))
            selected[label]["any"] += int(
                np.sum(np.logical_or.reduce(list(masks.values())))
            )
    return {"in_tree": in_tree, "selected": selected}


def _pull(measured: float, truth: float, error: float) -> float | None:
    if error is None or not error > 0 or measured is None:
        return None
    return (measured - truth) / error


def closure(
    config: Mapping,
    data_paths: Sequence[str],
    candidate_paths: Sequence[str],
    cuts_path: str,
    fit_paths: Sequence[str],
    efficiency_paths: Sequence[str],
    output: str,
    plot: str,
) -> dict:
    """The closure job: the table of true numbers, measurements and pulls."""
    from hfml.workingpoint import read_cuts

    level = config["efficiency"]["confidence_level"]
    truth = count_truth(config, data_paths, candidate_paths, read_cuts(cuts_path))
    bins = {}
    for label, fit_path, eff_path in zip(
        pt_bin_labels(config["pt_bins"]), fit_paths, efficiency_paths, strict=True
    ):
        fit = json.loads(Path(fit_path).read_text())
        efficiency = json.loads(Path(eff_path).read_text())
        true_yield = truth["selected"][label]["any"]
        row = {
            "true_selected": true_yield,
            "raw_yield": fit["raw_yield"],
            "raw_yield_error": fit["raw_yield_error"],
            "fit_status": fit["status"],
            "yield_pull": _pull(fit["raw_yield"], true_yield, fit["raw_yield_error"]),
            "efficiency": {},
        }
        for name, measured in efficiency["classes"].items():
            passed = truth["selected"][label][name]
            total = truth["in_tree"][label][name]
            true_value = passed / total if total else math.nan
            low, high = clopper_pearson(passed, total, level)
            error = math.hypot(
                (measured["interval"][1] - measured["interval"][0]) / 2,
                (high - low) / 2,
            )
            row["efficiency"][name] = {
                "mc": measured["efficiency"],
                "mc_interval": measured["interval"],
                "true": true_value,
                "true_passed": passed,
                "true_total": total,
                "true_interval": [low, high],
                "pull": _pull(measured["efficiency"], true_value, error),
            }
        bins[label] = row
    pulls = [
        p
        for row in bins.values()
        for p in [row["yield_pull"], *(e["pull"] for e in row["efficiency"].values())]
        if p is not None
    ]
    result = {
        "bins": bins,
        "largest_abs_pull": max((abs(p) for p in pulls), default=None),
        "closes": bool(pulls) and all(abs(p) < 3 for p in pulls),
    }
    write_json(output, result)
    plot_closure(config, bins, plot)
    for label, row in bins.items():
        log.info(
            "%s: raw yield %s vs %d true (pull %s); efficiency pulls %s",
            label,
            row["raw_yield"],
            row["true_selected"],
            row["yield_pull"],
            {k: v["pull"] for k, v in row["efficiency"].items()},
        )
    return result


def plot_closure(config: Mapping, bins: Mapping, output: str) -> None:
    """Pulls of the raw yield and of each class's efficiency vs pT."""
    import matplotlib.pyplot as plt

    from hfml.plotting import COLOURS, axis_label, legend, save

    edges = np.asarray(config["pt_bins"], float)
    centres = (edges[1:] + edges[:-1]) / 2
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.14, right=0.96, top=0.9, bottom=0.15)
    ax.axhspan(-3, 3, color="0.9")
    ax.axhline(0, color="grey", lw=0.8)
    rows = list(bins.values())
    series = {"raw yield": [r["yield_pull"] for r in rows]}
    for name in class_names(config, "mc"):
        series[f"efficiency {name}"] = [r["efficiency"][name]["pull"] for r in rows]
    shift = (np.arange(len(series)) - (len(series) - 1) / 2) * 0.15
    for k, (label, values) in enumerate(series.items()):
        values = np.array([np.nan if v is None else v for v in values], float)
        ax.plot(
            centres + shift[k] * np.diff(edges),
            values,
            "o",
            color=COLOURS[k % len(COLOURS)],
            label=label,
        )
    ax.set_xlabel(axis_label("fPt"))
    ax.set_ylabel("(measured − true) / error")
    ax.set_ylim(-5, 5)
    legend(ax, loc="upper right")
    save(fig, output, "Closure on the toy truth")

"""Selection efficiencies of the signal classes, from MC never used in training.

Per pT bin and MC class, the efficiency of preselection × BDT selection is
the product of

- the preselection efficiency: candidates of the class that pass the
  preselection over all candidates of the class in the MC trees (from the
  skim counts), and
- the BDT efficiency on the held-out test set: candidates that pass the
  working point, scored by the exported ONNX model exactly as in the apply
  stage, over all held-out candidates.

The held-out set is a random fraction of the preselected candidates, so its
BDT efficiency stands for the whole sample.  The interval is the
Clopper-Pearson interval of the held-out counts, scaled by the preselection
efficiency, whose statistical uncertainty (from the full MC sample) is
negligible next to it.
"""

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.stats import beta

from hfml.config import class_names, pt_bin_labels
from hfml.files import write_json

log = logging.getLogger(__name__)


def clopper_pearson(passed: int, total: int, level: float) -> tuple[float, float]:
    """Central Clopper-Pearson interval of ``passed`` out of ``total``."""
    if total <= 0:
        return (0.0, 1.0)
    alpha = 1 - level
    low = beta.ppf(alpha / 2, passed, total - passed + 1) if passed > 0 else 0.0
    high = (
        beta.ppf(1 - alpha / 2, passed + 1, total - passed) if passed < total else 1.0
    )
    return float(low), float(high)


def held_out_scores(config: Mapping, ptbin: str, test_path: str, onnx_path: str):
    """The held-out set of a bin and its scores [N, n_classes] from the
    exported ONNX model, as the apply stage computes them."""
    import pandas as pd

    from hfml.apply import model_features
    from hfml.inference import OnnxScorer
    from hfml.samples import LABEL

    features = model_features(config)
    test = pd.read_parquet(test_path, columns=[*features, "fM", "fPt", LABEL])
    scorer = OnnxScorer(onnx_path, len(features), f"model of {ptbin}")
    scores = scorer(test[features].to_numpy(np.float32))[:, : len(config["classes"])]
    return test, scores


def efficiency_bin(
    config: Mapping,
    ptbin: str,
    test_path: str,
    onnx_path: str,
    skim_counts_path: str,
    cuts_path: str,
    output: str,
) -> dict:
    """The efficiency job of one pT bin, at the working point of ``cuts_path``."""
    from hfml.inference import passes
    from hfml.samples import LABEL
    from hfml.workingpoint import read_cuts

    index = pt_bin_labels(config["pt_bins"]).index(ptbin)
    cuts = read_cuts(cuts_path)[index]
    directions = config["selection"]["cut_dirs"]
    level = config["efficiency"]["confidence_level"]
    test, scores = held_out_scores(config, ptbin, test_path, onnx_path)
    selected = passes(scores, cuts, directions)
    skim = json.loads(Path(skim_counts_path).read_text())["classes"]
    names = class_names(config)
    result = {"ptbin": ptbin, "cuts": list(cuts), "confidence_level": level}
    result["classes"] = {}
    for name in class_names(config, "mc"):
        rows = test[LABEL].to_numpy() == names.index(name)
        counts = skim[name][ptbin]
        pre_total, pre_passed = counts["before_preselection"], counts["selected"]
        preselection = pre_passed / pre_total if pre_total else 0.0
        bdt_passed, bdt_total = int(selected[rows].sum()), int(rows.sum())
        bdt = bdt_passed / bdt_total if bdt_total else 0.0
        low, high = clopper_pearson(bdt_passed, bdt_total, level)
        result["classes"][name] = {
            "preselection": {
                "passed": pre_passed,
                "total": pre_total,
                "efficiency": preselection,
            },
            "bdt": {
                "passed": bdt_passed,
                "total": bdt_total,
                "efficiency": bdt,
                "interval": [low, high],
            },
            "efficiency": preselection * bdt,
            "interval": [preselection * low, preselection * high],
        }
        log.info(
            "%s %s: preselection %.3f, BDT %.4f (%d/%d held out), total %.4f",
            ptbin,
            name,
            preselection,
            bdt,
            bdt_passed,
            bdt_total,
            preselection * bdt,
        )
    write_json(output, result)
    return result


def plot_efficiencies(config: Mapping, paths: list[str], output: str) -> None:
    """Efficiency vs pT of every MC class, with the intervals."""
    import matplotlib.pyplot as plt

    from hfml.plotting import COLOURS, axis_label, legend, save

    edges = np.asarray(config["pt_bins"], float)
    centres, half = (edges[1:] + edges[:-1]) / 2, np.diff(edges) / 2
    results = [json.loads(Path(p).read_text()) for p in paths]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.18, right=0.96, top=0.9, bottom=0.15)
    for k, name in enumerate(class_names(config, "mc")):
        values = np.array([r["classes"][name]["efficiency"] for r in results])
        low = np.array([r["classes"][name]["interval"][0] for r in results])
        high = np.array([r["classes"][name]["interval"][1] for r in results])
        ax.errorbar(
            centres,
            values,
            xerr=half,
            yerr=[values - low, high - values],
            fmt="o",
            ms=4,
            color=COLOURS[(k + 1) % len(COLOURS)],
            label=name,
        )
    ax.set_yscale("log")
    ax.set_xlabel(axis_label("fPt"))
    ax.set_ylabel("preselection × BDT efficiency")
    legend(ax, loc="lower right")
    save(fig, output, "Efficiency (held-out MC)")

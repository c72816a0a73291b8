"""``results/summary.json``: the analysis per pT bin in one file."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from hfml.config import pt_bin_labels
from hfml.files import write_json


def _read(path: str) -> dict:
    return json.loads(Path(path).read_text())


def summarise(
    config: Mapping,
    samples: Sequence[str],
    metrics: Sequence[str],
    efficiencies: Sequence[str],
    fits: Sequence[str],
    output: str,
    closure: str | None = None,
) -> dict:
    labels = pt_bin_labels(config["pt_bins"])
    closure_bins = _read(closure)["bins"] if closure else {}
    bins = {}
    for index, label in enumerate(labels):
        sample = _read(samples[index])
        metric = _read(metrics[index])
        efficiency = _read(efficiencies[index])
        fit = _read(fits[index])
        row = {
            "pt_range": config["pt_bins"][index : index + 2],
            "training_candidates": {
                name: {"train": c["train"], "test": c["test"]}
                for name, c in sample["classes"].items()
            },
            "auc_train": metric["auc_train"]["ovr"],
            "auc_test": metric["auc_test"]["ovr"],
            "cuts": efficiency["cuts"],
            "efficiency": {
                name: {"value": e["efficiency"], "interval": e["interval"]}
                for name, e in efficiency["classes"].items()
            },
            "fit": {
                key: fit[key]
                for key in (
                    "status",
                    "candidates",
                    "raw_yield",
                    "raw_yield_error",
                    "mean",
                    "sigma",
                    "signal",
                    "background",
                    "significance",
                    "signal_over_background",
                    "chi2_ndf",
                )
            },
        }
        if label in closure_bins:
            row["toy_truth"] = closure_bins[label]
        bins[label] = row
    result = {"bins": bins}
    write_json(output, result)
    return result

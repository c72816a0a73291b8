"""``results/summary.json``: the analysis per pT bin in one file, and the same
as an HTML table for the front page of the report."""

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from hfml.config import class_names, pt_bin_labels
from hfml.files import atomic_outputs, write_json


def _read(path: str) -> dict:
    return json.loads(Path(path).read_text())


def summarise(
    config: Mapping,
    samples: Sequence[str],
    metrics: Sequence[str],
    efficiencies: Sequence[str],
    fits: Sequence[str],
    scans: Sequence[str],
    output: str,
    table: str,
    closure: str | None = None,
    provenance: Mapping | None = None,
) -> dict:
    labels = pt_bin_labels(config["pt_bins"])
    closure_bins = _read(closure)["bins"] if closure else {}
    bins = {}
    for index, label in enumerate(labels):
        sample = _read(samples[index])
        metric = _read(metrics[index])
        efficiency = _read(efficiencies[index])
        fit = _read(fits[index])
        scan = _read(scans[index])
        row = {
            "pt_range": config["pt_bins"][index : index + 2],
            "training_candidates": {
                name: {"train": c["train"], "test": c["test"]}
                for name, c in sample["classes"].items()
            },
            "auc_train": metric["auc_train"]["ovr"],
            "auc_test": metric["auc_test"]["ovr"],
            "cuts": efficiency["cuts"],
            "cuts_source": scan["source"],
            "expected": {
                key: scan["expected"][key]
                for key in (
                    "signal",
                    "background",
                    "significance",
                    "signal_over_background",
                    "efficiency",
                )
            }
            | {"signal_class": scan["signal_class"], "window": scan["window"]},
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
    result = {"classes": class_names(config), "bins": bins}
    if provenance is not None:
        result["provenance"] = provenance
    write_json(output, result)
    with atomic_outputs(table) as (temporary,):
        temporary.write_text(summary_table(result))
    return result


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def _error(value, error, digits: int = 3) -> str:
    if value is None or error is None:
        return _number(value, digits)
    return f"{_number(value, digits)} ± {_number(error, 2)}"


def summary_table(summary: Mapping) -> str:
    """One column per pT bin: cuts, efficiencies, expected and measured figures."""
    bins = summary["bins"]
    auc_class = summary["classes"][0]
    lines: dict[str, list[str]] = {}

    def add(label: str, value: str) -> None:
        lines.setdefault(label, []).append(value)

    for row in bins.values():
        fit, expected = row["fit"], row["expected"]
        add("cuts", ", ".join(f"{c:g}" for c in row["cuts"]))
        add("cuts from", html.escape(row["cuts_source"]))
        add(
            f"AUC {html.escape(auc_class)} (test)",
            _number(row["auc_test"][auc_class], 4),
        )
        for name, efficiency in row["efficiency"].items():
            value = efficiency["value"]
            low, high = efficiency["interval"]
            add(
                f"ε {html.escape(name)}",
                f"{_number(value)}<br><small>+{_number(high - value, 2)} "
                f"−{_number(value - low, 2)}</small>",
            )
        add("expected S", _number(expected["signal"]))
        add("expected B", _number(expected["background"]))
        add("expected S/√(S+B)", _number(expected["significance"]))
        add("raw yield", _error(fit["raw_yield"], fit["raw_yield_error"]))
        mean, sigma = fit["mean"], fit["sigma"]
        add(
            "μ (MeV/<i>c</i><sup>2</sup>)",
            _number(None if mean is None else mean * 1000, 5),
        )
        add(
            "σ (MeV/<i>c</i><sup>2</sup>)",
            _number(None if sigma is None else sigma * 1000),
        )
        add("S/√(S+B)", _number(fit["significance"]))
        add("S/B", _number(fit["signal_over_background"]))
        add("χ²/ndf", _number(fit["chi2_ndf"]))
        add("fit", html.escape(fit["status"]))
        if "toy_truth" in row:
            add("true yield (toy)", str(row["toy_truth"]["true_selected"]))
            add("yield pull (toy)", _number(row["toy_truth"]["yield_pull"], 2))
    head = "".join(
        f"<th>{low:g}–{high:g}</th>"
        for low, high in (r["pt_range"] for r in bins.values())
    )
    body = "\n".join(
        f"<tr><th>{label}</th>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"
        for label, values in lines.items()
        if len(values) == len(bins)
    )
    style = (
        "<style>div.hfml-summary{max-width:100%;overflow-x:auto}"
        "div.hfml-summary small{color:#555}"
        "div.hfml-summary table{border-collapse:collapse;font-size:11px}"
        "div.hfml-summary td,div.hfml-summary th{border:1px solid #bbb;"
        "padding:2px 6px;text-align:right;white-space:nowrap}"
        "div.hfml-summary tbody th{text-align:left;font-weight:normal}"
        "div.hfml-summary thead th{background:#eee}</style>"
    )
    return (
        f'{style}\n<div class="hfml-summary"><table id="hfml-summary">\n'
        f"<thead><tr><th>p<sub>T</sub> (GeV/<i>c</i>)</th>{head}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table></div>\n"
    )

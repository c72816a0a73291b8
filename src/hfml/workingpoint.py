"""Working points: the score cuts of each pT bin, and their expected significance.

The cuts are either given (``selection.cuts`` as a table) or chosen here
(``selection.cuts: optimise``).  Either way every bin gets a scan over a grid
of cuts on one or two class scores (``selection.optimise.scan``; by default
the background and the prompt score), the other classes keeping their loose
cut from ``apply.loose_cuts``.  At each grid point:

- S, the expected Ds+ signal in mean ± ``window`` σ (mean and σ of the
  held-out MC signal), is the Ds+ yield after the loose cuts times the
  relative BDT efficiency of ``signal_class`` from the held-out MC,
  ε(point) / ε(loose).  The yield after the loose cuts is fitted on the data
  (``signal: fit``), or given per bin in the configuration.
- B is the background under the window from a fit of the side bands of the
  data that pass the point: the mass range of ``fit.range`` without
  ``SIDEBAND_GAP`` σ around the Ds+ and the D+ peaks, with the function of
  ``fit.background``, integrated over the window.

The expected significance is S/√(S+B).  Points whose side-band fit fails,
whose side bands hold fewer than ``min_sideband_candidates`` candidates, or
that miss the optional minimum S/B or minimum efficiency are not allowed; the
optimum is the allowed point of largest significance.

Counting is done once for the whole grid: for every candidate and scanned
class, the number of grid values (loosest first) its score passes, with
O2Physics' comparisons; a candidate passes a point when it passes both of its
values, so cumulative sums of one histogram give the counts of all points.
"""

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from hfml.config import class_names, pt_bin_labels
from hfml.errors import HfmlError
from hfml.inference import CUT_GREATER, passes
from hfml.o2 import MASS_DPLUS, MASS_DS

log = logging.getLogger(__name__)

OPTIMISE = "optimise"
SIDEBAND_GAP = 4.0
"""Half-width, in σ, of the mass ranges around the Ds+ and D+ peaks left out
of the side-band fits."""


EXPECTED = (
    "signal",
    "background",
    "significance",
    "signal_over_background",
    "efficiency",
    "sideband_candidates",
    "allowed",
)
"""The expected figures of a working point."""


class ScanError(HfmlError):
    """No working point can be chosen in a pT bin."""


@dataclass
class Axis:
    """The scanned cut values of one class, loosest first."""

    name: str
    index: int
    direction: int
    values: np.ndarray

    def passed(self, scores: np.ndarray) -> np.ndarray:
        """How many of the values (loosest first) each score passes.

        A score passes a value as in O2Physics: CutGreater rejects a score
        above the cut, CutSmaller one below it; equality passes.
        """
        scores = np.asarray(scores, np.float32).astype(np.float64)
        ascending = np.sort(self.values)
        if self.direction == CUT_GREATER:
            return len(ascending) - np.searchsorted(ascending, scores, side="left")
        return np.searchsorted(ascending, scores, side="right")


def optimising(config: Mapping) -> bool:
    return config["selection"]["cuts"] == OPTIMISE


def scan_axes(config: Mapping) -> list[Axis]:
    """The scanned classes of ``selection.optimise.scan``, in class order."""
    names = class_names(config)
    directions = config["selection"]["cut_dirs"]
    scan = config["selection"]["optimise"]["scan"]
    axes = []
    for name in names:
        if name not in scan:
            continue
        spec = scan[name]
        first, last = spec["range"]
        if spec["log"]:
            values = np.geomspace(first, last, spec["steps"])
        else:
            values = np.linspace(first, last, spec["steps"])
        index = names.index(name)
        # Three significant digits, as cuts are written in configurations;
        # loosest first: CutGreater loosens upwards, CutSmaller downwards.
        values = np.unique([float(f"{v:.3g}") for v in values])
        if directions[index] == CUT_GREATER:
            values = values[::-1]
        axes.append(Axis(name, index, directions[index], values))
    return axes


def grid_counts(
    axes: Sequence[Axis], scores: np.ndarray, bins: np.ndarray, n_bins: int
) -> np.ndarray:
    """Candidates passing each grid point, per histogram bin.

    ``scores`` [N, n_classes], ``bins`` the histogram bin of each candidate
    (outside 0..n_bins-1: not counted).  Returns [steps_1, (steps_2,) n_bins].
    """
    inside = (bins >= 0) & (bins < n_bins)
    shape = [len(a.values) + 1 for a in axes]
    flat = np.zeros(int(inside.sum()), np.int64)
    for axis in axes:
        flat = flat * (len(axis.values) + 1) + axis.passed(scores[inside, axis.index])
    flat = flat * n_bins + bins[inside]
    counts = np.bincount(flat, minlength=math.prod(shape) * n_bins)
    counts = counts.reshape([*shape, n_bins])
    # A candidate passing m values passes points 0..m-1: sum from m = i+1 up.
    for dimension in range(len(axes)):
        counts = np.flip(np.cumsum(np.flip(counts, dimension), dimension), dimension)
        counts = np.delete(counts, 0, axis=dimension)
    return counts


@dataclass
class Inputs:
    """What the significance of a pT bin is estimated from."""

    masses: np.ndarray
    """fM of the data candidates after the loose cuts"""
    scores: np.ndarray
    """their scores [N, n_classes]"""
    signal_scores: np.ndarray
    """held-out MC scores of the signal class that pass the loose cuts"""
    signal_total: int
    """held-out MC candidates of the signal class"""
    signal_loose: float
    """expected Ds+ in the window after the loose cuts"""
    mean: float
    sigma: float


def _expectation(
    config: Mapping, inputs: Inputs, counts: np.ndarray, passed_signal: np.ndarray
) -> dict[str, np.ndarray]:
    """S, B, significance and the allowed flag from mass histograms [..., bins]
    and held-out signal counts [...]."""
    from hfml.massfit import sideband_background, sideband_bins

    optimise = config["selection"]["optimise"]
    edges = mass_edges(config)
    window = signal_window(config, inputs.mean, inputs.sigma)
    excluded = peak_ranges(config, inputs.mean, inputs.sigma)
    side = sideband_bins(edges, excluded)
    shape = counts.shape[:-1]
    background = np.full(shape, np.nan)
    sideband = counts[..., side].sum(axis=-1)
    for point in np.ndindex(*shape):
        if sideband[point] > 0:
            background[point] = sideband_background(
                counts[point], edges, config["fit"]["background"], excluded, window
            )
    efficiency = passed_signal / inputs.signal_total if inputs.signal_total else 0.0
    loose = len(inputs.signal_scores) / inputs.signal_total
    signal = inputs.signal_loose * efficiency / loose
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = signal / np.sqrt(signal + background)
        ratio = signal / background
    allowed = np.isfinite(significance) & (
        sideband >= optimise["min_sideband_candidates"]
    )
    allowed &= (
        np.nan_to_num(ratio, nan=0.0, posinf=np.inf)
        >= (optimise["min_signal_over_background"])
    )
    allowed &= efficiency >= optimise["min_efficiency"]
    return {
        "signal": np.asarray(signal, float),
        "background": background,
        "significance": np.asarray(significance, float),
        "signal_over_background": np.asarray(ratio, float),
        "efficiency": np.asarray(efficiency, float),
        "sideband_candidates": sideband,
        "allowed": allowed,
    }


def mass_edges(config: Mapping) -> np.ndarray:
    first, last = config["fit"]["range"]
    bins = max(round((last - first) / config["fit"]["bin_width"]), 1)
    return np.linspace(first, last, bins + 1)


def mass_bins(masses: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The [low, high) bin of each mass; -1 or len(edges) - 1 outside."""
    return np.searchsorted(edges, masses, side="right") - 1


def mass_histogram(masses: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in [low, high) bins; masses outside the edges are not counted."""
    bins = mass_bins(masses, edges)
    inside = (bins >= 0) & (bins < len(edges) - 1)
    return np.bincount(bins[inside], minlength=len(edges) - 1)


def signal_window(config: Mapping, mean: float, sigma: float) -> tuple[float, float]:
    """mean ± window σ, inside the fitted mass range."""
    half = config["selection"]["optimise"]["window"] * sigma
    low, high = config["fit"]["range"]
    return max(mean - half, low), min(mean + half, high)


def peak_ranges(
    config: Mapping, mean: float, sigma: float
) -> list[tuple[float, float]]:
    """Mass ranges left out of the side-band fits: around the Ds+ and D+."""
    half = SIDEBAND_GAP * sigma
    ranges = [(mean - half, mean + half)]
    if config["fit"]["dplus_peak"]:
        shift, scale = MASS_DPLUS - MASS_DS, MASS_DPLUS / MASS_DS
        centre = mean + shift
        ranges.append((centre - half * scale, centre + half * scale))
    return ranges


def scan(config: Mapping, inputs: Inputs) -> dict:
    """The expected significance over the whole grid."""
    axes = scan_axes(config)
    edges = mass_edges(config)
    bins = mass_bins(inputs.masses, edges)
    counts = grid_counts(axes, inputs.scores, bins, len(edges) - 1)
    ones = np.zeros(len(inputs.signal_scores), np.int64)
    passed = grid_counts(axes, inputs.signal_scores, ones, 1)[..., 0]
    result = _expectation(config, inputs, counts, passed)
    return {"axes": axes, **result}


def at_cuts(config: Mapping, inputs: Inputs, row: Sequence[float]) -> dict:
    """The expected figures at one row of cuts (all classes)."""
    directions = config["selection"]["cut_dirs"]
    edges = mass_edges(config)
    chosen = passes(inputs.scores, row, directions)
    counts = mass_histogram(inputs.masses[chosen], edges)
    passed = np.array(passes(inputs.signal_scores, row, directions).sum())
    result = _expectation(config, inputs, counts, passed)
    return {k: _json_grid(v) if k != "allowed" else bool(v) for k, v in result.items()}


def best_point(significance: np.ndarray, allowed: np.ndarray) -> tuple[int, ...]:
    """The allowed grid point of largest significance (loosest on a tie)."""
    if not allowed.any():
        raise ScanError("no grid point is allowed")
    values = np.where(allowed, significance, -np.inf)
    return tuple(int(i) for i in np.unravel_index(np.argmax(values), values.shape))


def optimised_row(config: Mapping, axes: Sequence[Axis], point: Sequence[int]):
    row = [float(c) for c in config["apply"]["loose_cuts"]]
    for axis, i in zip(axes, point, strict=True):
        row[axis.index] = float(axis.values[i])
    return row


def read_cuts(path: str) -> list[list[float]]:
    """The cuts table of ``results/working_point/cuts.json``."""
    return json.loads(Path(path).read_text())["cuts"]


def collect_bin(
    config: Mapping, ptbin: str, apply_paths: Sequence[str], output: str
) -> int:
    """Gather the candidates of one pT bin from all apply outputs into one file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hfml.files import atomic_outputs
    from hfml.training import bin_edges

    low, high = bin_edges(config, ptbin)
    filters = [("fPt", ">=", low), ("fPt", "<", high)]
    table = pa.concat_tables(pq.read_table(p, filters=filters) for p in apply_paths)
    with atomic_outputs(output) as (temporary,):
        pq.write_table(table, temporary)
    log.info("%s: %d candidates after the loose cuts", ptbin, table.num_rows)
    return table.num_rows


def selected(config: Mapping, frame: pd.DataFrame, row: Sequence[float]) -> np.ndarray:
    """Which candidates of an apply output pass one row of cuts, as O2Physics."""
    from hfml.apply import score_columns

    scores = frame[score_columns(config)].to_numpy(np.float32)
    return passes(scores, row, config["selection"]["cut_dirs"])


def load_inputs(
    config: Mapping,
    ptbin: str,
    candidates_path: str,
    test_path: str,
    onnx_path: str,
) -> tuple[Inputs, dict]:
    """Data, held-out MC and the signal after the loose cuts of one pT bin."""
    from hfml.apply import score_columns
    from hfml.efficiency import held_out_scores
    from hfml.massfit import FitSettings, fit_mass, mc_peak
    from hfml.samples import LABEL

    optimise = config["selection"]["optimise"]
    directions = config["selection"]["cut_dirs"]
    loose = config["apply"]["loose_cuts"]
    data = pd.read_parquet(candidates_path, columns=["fM", *score_columns(config)])
    scores = data[score_columns(config)].to_numpy(np.float32)
    masses = data["fM"].to_numpy(float)
    test, test_scores = held_out_scores(config, ptbin, test_path, onnx_path)
    names = class_names(config)
    rows = test[LABEL].to_numpy() == names.index(optimise["signal_class"])
    signal_scores = test_scores[rows]
    signal_scores = signal_scores[passes(signal_scores, loose, directions)]
    if not len(signal_scores):
        raise ScanError(
            f"{ptbin}: no held-out {optimise['signal_class']} candidate passes the "
            f"loose cuts {list(loose)} (apply.loose_cuts), so no efficiency can "
            "scale the expected signal"
        )
    mean, sigma = mc_peak(test_path, config)
    reference: dict = {"source": "fit" if optimise["signal"] == "fit" else "config"}
    # The share of the Gaussian peak inside the (clipped) window.
    ends = np.subtract(signal_window(config, mean, sigma), mean) / sigma
    fraction = float(np.diff(ndtr(ends))[0])
    if optimise["signal"] == "fit":
        edges = mass_edges(config)
        counts = mass_histogram(masses, edges)
        settings = FitSettings.from_config(config["fit"])
        fit = fit_mass(counts, edges, settings, mean, sigma)
        reference["fit_status"] = fit.status
        if not fit.ok:
            raise ScanError(
                f"{ptbin}: the fit of the data after the loose cuts "
                f"(apply.loose_cuts) failed ({fit.status}), so the expected signal "
                "is unknown; give it per bin in selection.optimise.signal"
            )
        loose_yield = fit.raw_yield
    else:
        index = pt_bin_labels(config["pt_bins"]).index(ptbin)
        loose_yield = float(optimise["signal"][index])
    reference |= {
        "yield_after_loose_cuts": loose_yield,
        "window_fraction": fraction,
        "signal_in_window": loose_yield * fraction,
        "efficiency_after_loose_cuts": len(signal_scores) / max(int(rows.sum()), 1),
    }
    inputs = Inputs(
        masses,
        scores,
        signal_scores,
        int(rows.sum()),
        loose_yield * fraction,
        mean,
        sigma,
    )
    return inputs, reference


def _json_grid(values: np.ndarray) -> list:
    """A grid as nested lists, NaN and infinities as null."""
    return np.vectorize(
        lambda v: None if not math.isfinite(v) else float(v), otypes=[object]
    )(np.asarray(values, float)).tolist()


def working_point_bin(
    config: Mapping,
    ptbin: str,
    candidates_path: str,
    test_path: str,
    onnx_path: str,
    model_path: str,
    output: str,
    map_plot: str,
    curve_plot: str,
) -> dict:
    """The working-point job of one pT bin: scan, choice, plots."""
    from hfml.files import write_json
    from hfml.training import bin_edges

    labels = pt_bin_labels(config["pt_bins"])
    try:
        inputs, reference = load_inputs(
            config, ptbin, candidates_path, test_path, onnx_path
        )
    except ScanError as err:
        if optimising(config):
            raise
        # The given cuts stand without an expected significance.
        log.warning("%s: no expected significance: %s", ptbin, err)
        row = [float(c) for c in config["selection"]["cuts"][labels.index(ptbin)]]
        result = {
            "ptbin": ptbin,
            "pt_range": list(bin_edges(config, ptbin)),
            "source": "table",
            "cuts": row,
            "cut_dirs": list(config["selection"]["cut_dirs"]),
            "expected": dict.fromkeys(EXPECTED, None),
            "signal_class": config["selection"]["optimise"]["signal_class"],
            "window": None,
            "error": str(err),
        }
        for path, title in ((map_plot, "Expected significance"), (curve_plot, None)):
            _plot_message(
                path, title or "Significance vs efficiency", ptbin, config, err
            )
        write_json(output, result)
        return result
    grid = scan(config, inputs)
    axes = grid.pop("axes")
    try:
        best = best_point(grid["significance"], grid["allowed"])
    except ScanError:
        best = None
    if optimising(config):
        if best is None:
            raise ScanError(
                f"{ptbin}: no cuts of the scan satisfy the constraints of "
                "selection.optimise (side-band candidates, side-band fit, minimum "
                "S/B, minimum efficiency); loosen them or widen the scan"
            )
        row = optimised_row(config, axes, best)
        _check_decisions(config, ptbin, model_path, onnx_path, test_path, row)
    else:
        row = [float(c) for c in config["selection"]["cuts"][labels.index(ptbin)]]
    chosen = at_cuts(config, inputs, row)
    result = {
        "ptbin": ptbin,
        "pt_range": list(bin_edges(config, ptbin)),
        "source": OPTIMISE if optimising(config) else "table",
        "cuts": row,
        "cut_dirs": list(config["selection"]["cut_dirs"]),
        "expected": chosen,
        "mc_peak": {"mean": inputs.mean, "sigma": inputs.sigma},
        "window": list(signal_window(config, inputs.mean, inputs.sigma)),
        "signal_reference": reference,
        "signal_class": config["selection"]["optimise"]["signal_class"],
        "axes": [{"class": a.name, "values": a.values.tolist()} for a in axes],
        "best_on_grid": None if best is None else list(best),
        "grid": {
            key: value.tolist() if key == "allowed" else _json_grid(value)
            for key, value in grid.items()
        },
    }
    plot_map(axes, grid, row, best, map_plot, ptbin, config)
    plot_curve(grid, chosen, best, curve_plot, ptbin, config)
    write_json(output, result)
    log.info(
        "%s: cuts %s (%s): S %.1f, B %.1f, S/sqrt(S+B) %.2f, %s efficiency %.4f",
        ptbin,
        row,
        result["source"],
        chosen["signal"],
        chosen["background"],
        chosen["significance"],
        result["signal_class"],
        chosen["efficiency"],
    )
    return result


def _plot_message(path, title, ptbin, config, message) -> None:
    """A figure that says why there is no scan."""
    import matplotlib.pyplot as plt

    from hfml.plotting import pt_title, save
    from hfml.training import bin_edges

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        f"NO SCAN\n{message}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="red",
        wrap=True,
    )
    low, high = bin_edges(config, ptbin)
    save(fig, path, f"{title}, {pt_title(low, high)}")


def _check_decisions(config, ptbin, model_path, onnx_path, test_path, row) -> None:
    """The exported model takes the native model's decisions at the chosen cuts."""
    from hfml.apply import model_features
    from hfml.export import validate
    from hfml.models import load
    from hfml.training import bin_edges

    features = model_features(config)
    test = pd.read_parquet(test_path, columns=[*features, "fPt"])
    validate(
        load(model_path),
        onnx_path,
        test[features].to_numpy(np.float32),
        test["fPt"].to_numpy(),
        bin_edges(config, ptbin),
        row,
        config["selection"]["cut_dirs"],
        config["export"]["tolerance"],
    )


def write_cuts(config: Mapping, scans: Sequence[str], output: str) -> dict:
    """``results/working_point/cuts.json``: the cuts table every later stage uses."""
    from hfml.files import write_json

    if optimising(config):
        cuts = [json.loads(Path(p).read_text())["cuts"] for p in scans]
        source = OPTIMISE
    else:
        cuts = [[float(c) for c in row] for row in config["selection"]["cuts"]]
        source = "table"
    result = {
        "source": source,
        "pt_bins": list(config["pt_bins"]),
        "classes": class_names(config),
        "cut_dirs": list(config["selection"]["cut_dirs"]),
        "cuts": cuts,
    }
    write_json(output, result)
    return result


def _cell_edges(values: np.ndarray, log_scale: bool) -> np.ndarray:
    """Edges of the cells centred on sorted grid values."""
    x = np.log(values) if log_scale else np.asarray(values, float)
    if len(x) == 1:
        edges = np.array([x[0] - 0.5, x[0] + 0.5])
    else:
        middle = (x[1:] + x[:-1]) / 2
        edges = np.concatenate(
            [[x[0] - (middle[0] - x[0])], middle, [x[-1] + (x[-1] - middle[-1])]]
        )
    return np.exp(edges) if log_scale else edges


def _score_label(config: Mapping, axis: Axis) -> str:
    kind = "≤" if axis.direction == CUT_GREATER else "≥"
    return f"cut on the {axis.name} score (keep {kind} cut)"


def plot_map(axes, grid, row, best, path, ptbin, config) -> None:
    """The expected significance over the scanned cuts, chosen point marked."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hfml.plotting import COLOURS, legend, pt_title, save
    from hfml.training import bin_edges

    scan_spec = config["selection"]["optimise"]["scan"]
    significance = np.ma.masked_where(~grid["allowed"], grid["significance"])
    fig, ax = plt.subplots(figsize=(6.4, 5))
    fig.subplots_adjust(left=0.15, right=0.9, top=0.9, bottom=0.14)
    x_axis = axes[0]
    x_log = scan_spec[x_axis.name]["log"]
    order_x = np.argsort(x_axis.values)
    if len(axes) == 2:
        y_axis = axes[1]
        y_log = scan_spec[y_axis.name]["log"]
        order_y = np.argsort(y_axis.values)
        values = significance[np.ix_(order_x, order_y)].T
        ax.set_facecolor("0.85")
        mesh = ax.pcolormesh(
            _cell_edges(x_axis.values[order_x], x_log),
            _cell_edges(y_axis.values[order_y], y_log),
            values,
            cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, pad=0.02).set_label("expected S/√(S+B)")
        ax.plot(
            row[x_axis.index],
            row[y_axis.index],
            marker="*",
            ms=16,
            color=COLOURS[1],
            mec="white",
            ls="none",
            label="chosen cuts",
        )
        if best is not None and not optimising(config):
            ax.plot(
                x_axis.values[best[0]],
                y_axis.values[best[1]],
                marker="o",
                ms=9,
                mfc="none",
                mec="white",
                ls="none",
                label="largest on the grid",
            )
        ax.set_ylabel(_score_label(config, y_axis))
        if y_log:
            ax.set_yscale("log")

    else:
        x = x_axis.values[order_x]
        y = np.asarray(grid["significance"], float)[order_x]
        ok = np.asarray(grid["allowed"])[order_x]
        ax.plot(x, np.where(ok, y, np.nan), color=COLOURS[0], marker="o", ms=3)
        ax.plot(x[~ok], y[~ok], "x", color="grey", label="not allowed")
        ax.axvline(row[x_axis.index], color=COLOURS[1], label="chosen cut")
        ax.set_ylabel("expected S/√(S+B)")
    ax.set_xlabel(_score_label(config, x_axis))
    if x_log:
        ax.set_xscale("log")
    handles, labels = ax.get_legend_handles_labels()
    if len(axes) == 2:
        handles.append(Patch(facecolor="0.85", edgecolor="0.6"))
        labels.append("not allowed")
    legend(ax, handles=handles, labels=labels, loc="best")
    low, high = bin_edges(config, ptbin)
    save(fig, path, f"Expected significance, {pt_title(low, high)}")


def plot_curve(grid, chosen, best, path, ptbin, config) -> None:
    """Expected significance against the signal efficiency of every point."""
    import matplotlib.pyplot as plt

    from hfml.plotting import COLOURS, legend, pt_title, save
    from hfml.training import bin_edges

    efficiency = np.ravel(grid["efficiency"])
    significance = np.ravel(grid["significance"])
    allowed = np.ravel(grid["allowed"])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.15, right=0.96, top=0.9, bottom=0.15)
    ax.plot(
        efficiency[allowed],
        significance[allowed],
        "o",
        ms=3,
        color=COLOURS[0],
        alpha=0.6,
        label="scanned cuts",
    )
    if (~allowed).any():
        ax.plot(
            efficiency[~allowed],
            significance[~allowed],
            "x",
            ms=3,
            color="grey",
            label="not allowed",
        )
    ax.plot(
        chosen["efficiency"],
        chosen["significance"],
        "*",
        ms=16,
        color=COLOURS[1],
        mec="white",
        label="chosen cuts",
    )
    signal_class = config["selection"]["optimise"]["signal_class"]
    ax.set_xlabel(f"BDT efficiency of {signal_class} (held-out MC)")
    ax.set_ylabel("expected S/√(S+B)")
    legend(ax, loc="best")
    low, high = bin_edges(config, ptbin)
    save(fig, path, f"Significance vs efficiency, {pt_title(low, high)}")

"""Invariant-mass fits: binned extended maximum likelihood with iminuit.

The model of a histogram of the selected candidates is a Gaussian for the
Ds+ peak, a Gaussian for the D+ peak (the same KKπ final state, about 100
MeV/c² lower) and a second-order polynomial or an exponential for the
combinatorial background.  Expected bin contents are differences of the
model's cumulative integral at the bin edges (``ExtendedBinnedNLL`` with a
scaled cdf), so wide bins are handled exactly.

The signal ``S`` and background ``B`` (combinatorial plus any D+ tail) are
integrated over mean ± ``window`` σ of the Ds+ peak; the significance is
S/√(S+B) and χ² is Pearson's over the bins with a positive expectation, with
as many degrees of freedom as bins minus free parameters.
"""

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit
from iminuit.cost import ExtendedBinnedNLL
from scipy.special import ndtr

from hfml.o2 import MASS_DPLUS, MASS_DS

log = logging.getLogger(__name__)


@dataclass
class FitSettings:
    background: str = "pol2"
    """pol2 or expo"""
    dplus_peak: bool = True
    fix_mean: bool = False
    fix_sigma: bool = False
    window: float = 3.0
    """half-width, in σ of the Ds+ peak, of the signal window"""

    @classmethod
    def from_config(cls, fit: Mapping) -> "FitSettings":
        return cls(
            fit["background"],
            fit["dplus_peak"],
            fit["fix_mean"],
            fit["fix_sigma"],
            fit["signal_window"],
        )


@dataclass
class FitResult:
    status: str
    """'ok', or why the fit cannot be trusted"""
    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    raw_yield: float = math.nan
    raw_yield_error: float = math.nan
    signal: float = math.nan
    background: float = math.nan
    significance: float = math.nan
    signal_over_background: float = math.nan
    chi2: float = math.nan
    ndf: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> dict:
        """JSON-ready figures; NaN (a failed fit) becomes null."""

        def number(value):
            return None if value is None or not math.isfinite(value) else value

        return {
            "status": self.status,
            "raw_yield": number(self.raw_yield),
            "raw_yield_error": number(self.raw_yield_error),
            "mean": number(self.values.get("mean")),
            "mean_error": number(self.errors.get("mean")),
            "sigma": number(self.values.get("sigma")),
            "sigma_error": number(self.errors.get("sigma")),
            "signal": number(self.signal),
            "background": number(self.background),
            "significance": number(self.significance),
            "signal_over_background": number(self.signal_over_background),
            "chi2": number(self.chi2),
            "ndf": self.ndf,
            "chi2_ndf": number(self.chi2 / self.ndf) if self.ndf > 0 else None,
            "parameters": {k: number(v) for k, v in self.values.items()},
            "parameter_errors": {k: number(v) for k, v in self.errors.items()},
        }


class MassModel:
    """Cumulative expected counts of the peaks and the background, or of the
    background alone (``peaks=False``, for side-band fits)."""

    def __init__(
        self, low: float, high: float, settings: FitSettings, peaks: bool = True
    ) -> None:
        self.low, self.high = low, high
        self.settings = settings
        self.peaks = peaks
        names = ["raw_yield", "mean", "sigma"] if peaks else []
        if peaks and settings.dplus_peak:
            names += ["dplus_yield", "dplus_mean", "dplus_sigma"]
        if settings.background == "pol2":
            names += ["b0", "b1", "b2"]
        elif settings.background == "expo":
            names += ["bkg_yield", "slope"]
        else:
            raise ValueError(
                f"background must be pol2 or expo, not {settings.background}"
            )
        self.names = names

    def cdf(self, x, *parameters) -> np.ndarray:
        """Expected counts below x (from the low edge), summed over components."""
        return sum(self.components(x, *parameters).values())

    def components(self, x, *parameters) -> dict[str, np.ndarray]:
        p = dict(zip(self.names, parameters, strict=True))
        x = np.asarray(x, float)
        parts = {}
        if self.peaks:
            parts["ds"] = self._gauss(x, p["raw_yield"], p["mean"], p["sigma"])
        if self.peaks and self.settings.dplus_peak:
            parts["dplus"] = self._gauss(
                x, p["dplus_yield"], p["dplus_mean"], p["dplus_sigma"]
            )
        u = x - self.low
        if self.settings.background == "pol2":
            parts["background"] = p["b0"] * u + p["b1"] * u**2 / 2 + p["b2"] * u**3 / 3
        else:
            width, slope = self.high - self.low, p["slope"]
            if abs(slope * width) < 1e-9:
                fraction = u / width
            else:
                fraction = np.expm1(slope * u) / np.expm1(slope * width)
            parts["background"] = p["bkg_yield"] * fraction
        return parts

    def _gauss(self, x, amount, mean, sigma):
        low = ndtr((self.low - mean) / sigma)
        return amount * (ndtr((x - mean) / sigma) - low)


def fit_mass(
    counts: np.ndarray,
    edges: np.ndarray,
    settings: FitSettings,
    mean: float = MASS_DS,
    sigma: float = 0.01,
) -> FitResult:
    """Fit a histogram; ``mean`` and ``sigma`` (from MC) start the Ds+ peak."""
    counts = np.asarray(counts, float)
    edges = np.asarray(edges, float)
    model = MassModel(edges[0], edges[-1], settings)
    if counts.sum() < 10:
        return FitResult(f"too few candidates to fit ({counts.sum():.0f})")
    start = _start_values(counts, edges, model, mean, sigma)
    cost = ExtendedBinnedNLL(counts, edges, model.cdf)
    minuit = Minuit(cost, *[start[n] for n in model.names], name=model.names)
    width = edges[-1] - edges[0]
    minuit.limits["mean"] = (mean - 0.05, mean + 0.05)
    minuit.limits["sigma"] = (sigma / 5, sigma * 5)
    if settings.dplus_peak:
        minuit.limits["dplus_yield"] = (0, None)
        minuit.limits["dplus_mean"] = (MASS_DPLUS - 0.05, MASS_DPLUS + 0.05)
        minuit.limits["dplus_sigma"] = (sigma / 5, sigma * 5)
    if settings.background == "expo":
        minuit.limits["bkg_yield"] = (0, None)
        minuit.limits["slope"] = (-50 / width, 50 / width)
    minuit.fixed["mean"] = settings.fix_mean
    minuit.fixed["sigma"] = settings.fix_sigma
    _minimise(minuit)
    if minuit.valid:
        minuit.hesse()
    status = _status(minuit)
    values = {n: float(v) for n, v in zip(model.names, minuit.values, strict=True)}
    errors = {n: float(e) for n, e in zip(model.names, minuit.errors, strict=True)}
    result = FitResult(status, values, errors)
    if not result.ok:
        log.warning("mass fit not trusted: %s", status)
        return result
    result.raw_yield, result.raw_yield_error = values["raw_yield"], errors["raw_yield"]
    _window_figures(result, model, minuit.values)
    expected = np.diff(model.cdf(edges, *minuit.values))
    used = expected > 0
    result.chi2 = float(np.sum((counts[used] - expected[used]) ** 2 / expected[used]))
    result.ndf = int(used.sum()) - minuit.nfit
    return result


def sideband_bins(edges: np.ndarray, excluded) -> np.ndarray:
    """Which histogram bins overlap none of the ``excluded`` mass ranges."""
    side = np.ones(len(edges) - 1, bool)
    for low, high in excluded:
        side &= (edges[1:] <= low) | (edges[:-1] >= high)
    return side


def sideband_background(
    counts: np.ndarray,
    edges: np.ndarray,
    background: str,
    excluded: list[tuple[float, float]],
    window: tuple[float, float],
) -> float:
    """Background in ``window`` from a fit of the bins outside ``excluded``.

    The background function (pol2 or expo) is fitted, by binned extended
    likelihood, to the bins that overlap none of the excluded mass ranges
    (the peaks), and integrated over the window.  NaN if the fit fails or the
    integral is negative.
    """
    counts = np.asarray(counts, float)
    edges = np.asarray(edges, float)
    settings = FitSettings(background=background, dplus_peak=False)
    model = MassModel(edges[0], edges[-1], settings, peaks=False)
    side = sideband_bins(edges, excluded)
    widths = np.diff(edges)
    density = counts[side].sum() / widths[side].sum() if side.any() else 0.0
    if background == "pol2":
        start = {"b0": max(density, 1e-3), "b1": 0.0, "b2": 0.0}
    else:
        start = {"bkg_yield": max(density * (edges[-1] - edges[0]), 1e-3)}
        start["slope"] = 0.0
    cost = ExtendedBinnedNLL(counts, edges, model.cdf)
    cost.mask = side
    minuit = Minuit(cost, *[start[n] for n in model.names], name=model.names)
    if background == "expo":
        width = edges[-1] - edges[0]
        minuit.limits["bkg_yield"] = (0, None)
        minuit.limits["slope"] = (-50 / width, 50 / width)
    _minimise(minuit)
    if not minuit.valid:
        return math.nan
    low, high = model.cdf(np.asarray(window, float), *minuit.values)
    return float(high - low) if high >= low else math.nan


def _minimise(minuit: Minuit) -> None:
    """MIGRAD, called once more from where it stopped if it did not converge
    (its estimated distance to the minimum is often only just too large)."""
    minuit.migrad()
    if not minuit.valid:
        minuit.migrad()


def _status(minuit: Minuit) -> str:
    if not minuit.valid:
        return "failed: the minimum is not valid (MIGRAD did not converge)"
    if not minuit.accurate:
        return "failed: the covariance matrix is not accurate"
    return "ok"


def _start_values(counts, edges, model: MassModel, mean: float, sigma: float) -> dict:
    centres = (edges[1:] + edges[:-1]) / 2
    width = edges[-1] - edges[0]
    peak = np.abs(centres - mean) < 2 * sigma
    away = np.abs(centres - mean) > 4 * sigma
    if model.settings.dplus_peak:
        away &= np.abs(centres - MASS_DPLUS) > 4 * sigma
    bin_width = np.diff(edges)
    density = counts[away].sum() / bin_width[away].sum() if away.any() else 0.0
    signal = max(counts[peak].sum() - density * bin_width[peak].sum(), 1.0)
    start = {"raw_yield": signal, "mean": mean, "sigma": sigma}
    if model.settings.dplus_peak:
        near = np.abs(centres - MASS_DPLUS) < 2 * sigma
        dplus = counts[near].sum() - density * bin_width[near].sum()
        start |= {
            "dplus_yield": max(dplus, 1.0),
            "dplus_mean": MASS_DPLUS,
            "dplus_sigma": sigma * MASS_DPLUS / MASS_DS,
        }
    if model.settings.background == "pol2":
        start |= {"b0": max(density, 1.0), "b1": 0.0, "b2": 0.0}
    else:
        start |= {"bkg_yield": max(density * width, 1.0), "slope": 0.0}
    return start


def _window_figures(result: FitResult, model: MassModel, parameters) -> None:
    """S, B, significance and S/B in mean ± window σ of the Ds+ peak."""
    mean, sigma = result.values["mean"], result.values["sigma"]
    half = model.settings.window * sigma
    ends = np.array([max(mean - half, model.low), min(mean + half, model.high)])
    parts = {
        k: float(np.diff(v)[0]) for k, v in model.components(ends, *parameters).items()
    }
    signal = parts.pop("ds")
    background = sum(parts.values())
    result.signal, result.background = signal, background
    if signal + background > 0:
        result.significance = signal / math.sqrt(signal + background)
    if background > 0:
        result.signal_over_background = signal / background


def plot_fit(counts, edges, settings: FitSettings, result: FitResult, path, title):
    """Data, total fit and components, with a panel of pulls per bin."""
    import matplotlib.pyplot as plt

    from hfml.plotting import COLOURS, axis_label, legend, save

    counts = np.asarray(counts, float)
    centres = (edges[1:] + edges[:-1]) / 2
    width = edges[1] - edges[0]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 5.5), sharex=True, height_ratios=(3, 1)
    )
    fig.subplots_adjust(left=0.14, right=0.96, top=0.9, bottom=0.14, hspace=0.05)
    top.errorbar(
        centres,
        counts,
        yerr=np.sqrt(counts),
        fmt="o",
        ms=3,
        color="black",
        label="selected data",
    )
    unit = f"Counts per {width * 1000:.0f} MeV/$c^2$"
    top.set_ylabel(unit)
    bottom.set_xlabel(axis_label("fM"))
    bottom.set_ylabel("pull")
    if result.ok:
        model = MassModel(edges[0], edges[-1], settings)
        parameters = [result.values[n] for n in model.names]
        fine = np.linspace(edges[0], edges[-1], 400)
        step = fine[1] - fine[0]

        def density(parts):
            return np.gradient(parts, step) * width

        components = model.components(fine, *parameters)
        total = sum(components.values())
        top.plot(fine, density(total), color=COLOURS[0], label="total fit")
        styles = {
            "ds": (COLOURS[1], "-", "D$_s^+$"),
            "dplus": (COLOURS[3], "-", "D$^+$"),
            "background": (COLOURS[2], "--", f"background ({settings.background})"),
        }
        for name, part in components.items():
            colour, line, label = styles[name]
            shown = density(part)
            if name != "background":
                shown = shown + density(components["background"])
            top.plot(fine, shown, color=colour, ls=line, lw=1, label=label)
        expected = np.diff(model.cdf(edges, *parameters))
        pulls = np.zeros_like(counts)
        positive = expected > 0
        pulls[positive] = (counts - expected)[positive] / np.sqrt(expected[positive])
        bottom.bar(centres, pulls, width=width, color=COLOURS[0], alpha=0.6)
        text = (
            f"raw yield = {result.raw_yield:.0f} ± {result.raw_yield_error:.0f}\n"
            f"μ = {result.values['mean'] * 1000:.1f} ± "
            f"{result.errors['mean'] * 1000:.1f} MeV/$c^2$\n"
            f"σ = {result.values['sigma'] * 1000:.1f} ± "
            f"{result.errors['sigma'] * 1000:.1f} MeV/$c^2$\n"
            f"S/√(S+B) ({settings.window:g}σ) = {result.significance:.1f}\n"
            f"S/B ({settings.window:g}σ) = {result.signal_over_background:.2f}\n"
            f"χ²/ndf = {result.chi2:.1f}/{result.ndf}"
        )
        top.text(0.03, 0.96, text, transform=top.transAxes, va="top", fontsize=8)
    else:
        top.text(
            0.5,
            0.5,
            f"FIT FAILED\n{result.status}",
            transform=top.transAxes,
            ha="center",
            va="center",
            color="red",
            fontsize=11,
            wrap=True,
        )
    bottom.axhline(0, color="grey", lw=0.8)
    top.set_ylim(bottom=0, top=max(counts.max(), 1) * 1.45)
    legend(top, loc="upper right")
    save(fig, path, title)


def write_root_histogram(path, name: str, counts, edges, title: str) -> None:
    """The histogram as a ROOT TH1D (written with uproot), atomically."""
    import hist

    from hfml.files import atomic_outputs
    from hfml.io import recreate_root

    histogram = hist.Hist(
        hist.axis.Variable(edges, name="m", label="M(KKπ) (GeV/c^2)"),
        storage=hist.storage.Weight(),
        name=name,
        label=title,
    )
    histogram.view().value = counts
    histogram.view().variance = counts
    # The file's UUIDs derive from its content: the same histogram, the same
    # bytes; another histogram, other UUIDs.
    digest = hashlib.sha256(np.asarray(edges, np.float64).tobytes())
    digest.update(np.asarray(counts, np.float64).tobytes())
    content = digest.hexdigest()
    with (
        atomic_outputs(path) as (temporary,),
        recreate_root(temporary, identity=f"hfml {name} {content}") as out,
    ):
        out[name] = histogram


def mc_peak(test_path: str, config: Mapping) -> tuple[float, float]:
    """Mean and width of the Ds+ peak in the held-out MC signal (median and
    1.4826 × median absolute deviation, robust against tails)."""
    import pandas as pd

    from hfml.config import class_names
    from hfml.samples import LABEL

    names = class_names(config)
    signal = [names.index(n) for n in class_names(config, "mc")]
    test = pd.read_parquet(test_path, columns=["fM", LABEL])
    masses = test.loc[test[LABEL].isin(signal), "fM"].to_numpy(float)
    if len(masses) < 10:
        return MASS_DS, 0.01
    median = float(np.median(masses))
    return median, float(1.4826 * np.median(np.abs(masses - median)))


def fit_bin(
    config: Mapping,
    ptbin: str,
    candidates_path: str,
    cuts_path: str,
    test_path: str,
    output: str,
    plot: str,
    root_file: str,
) -> dict:
    """The mass-fit job of one pT bin, on the candidates passing its cuts."""
    import pandas as pd

    from hfml.apply import score_columns
    from hfml.config import pt_bin_labels
    from hfml.files import write_json
    from hfml.plotting import pt_title
    from hfml.workingpoint import mass_edges, mass_histogram, read_cuts, selected

    fit = config["fit"]
    index = pt_bin_labels(config["pt_bins"]).index(ptbin)
    low, high = config["pt_bins"][index], config["pt_bins"][index + 1]
    row = read_cuts(cuts_path)[index]
    frame = pd.read_parquet(candidates_path, columns=["fM", *score_columns(config)])
    masses = frame["fM"].to_numpy()[selected(config, frame, row)]
    edges = mass_edges(config)
    counts = mass_histogram(masses, edges)
    mean, sigma = mc_peak(test_path, config)
    settings = FitSettings.from_config(fit)
    result = fit_mass(counts, edges, settings, mean, sigma)
    summary = {
        "ptbin": ptbin,
        "pt_range": [low, high],
        "cuts": row,
        "selected_candidates": len(masses),
        "candidates": int(counts.sum()),
        "mc_peak": {"mean": mean, "sigma": sigma},
        "settings": dict(fit),
        **result.summary(),
    }
    title = f"Selected data, {pt_title(low, high)}"
    plot_fit(counts, edges, settings, result, plot, title)
    write_root_histogram(root_file, f"hMass_{ptbin}", counts, edges, title)
    write_json(output, summary)
    if result.ok:
        log.info(
            "%s: raw yield %.1f ± %.1f, mean %.4f, sigma %.4f, chi2/ndf %.1f/%d",
            ptbin,
            result.raw_yield,
            result.raw_yield_error,
            result.values["mean"],
            result.values["sigma"],
            result.chi2,
            result.ndf,
        )
    else:
        log.warning("%s: the mass fit failed (%s)", ptbin, result.status)
    return summary

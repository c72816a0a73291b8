"""Efficiencies, invariant-mass fits and the toy closure."""

import json

import numpy as np
import pytest
import uproot
from scipy.stats import binom

from hfml.efficiency import clopper_pearson
from hfml.massfit import FitSettings, fit_mass, plot_fit, write_root_histogram
from hfml.o2 import MASS_DPLUS, MASS_DS

EDGES = np.linspace(1.72, 2.18, 93)


def histogram(rng, signal, dplus, background, slope=-2.5):
    """Counts of Poisson-fluctuated Gaussian peaks on an exponential."""
    width = EDGES[-1] - EDGES[0]
    u = rng.random(rng.poisson(background))
    combinatorial = EDGES[0] + np.log1p(u * np.expm1(slope * width)) / slope
    masses = np.concatenate(
        [
            rng.normal(MASS_DS, 0.010, rng.poisson(signal)),
            rng.normal(MASS_DPLUS, 0.009, rng.poisson(dplus)),
            combinatorial,
        ]
    )
    return np.histogram(masses, EDGES)[0]


@pytest.mark.parametrize("background", ["pol2", "expo"])
def test_fit_pulls_of_the_yield_have_mean_zero_and_width_one(background):
    rng = np.random.default_rng(11)
    settings = FitSettings(background=background)
    pulls = []
    for _ in range(60):
        counts = histogram(rng, 300, 150, 2000)
        result = fit_mass(counts, EDGES, settings, MASS_DS + 0.002, 0.012)
        assert result.ok, result.status
        pulls.append((result.raw_yield - 300) / result.raw_yield_error)
    # 60 pulls: the mean is known to ±0.13, the width to ±0.09 (1σ).
    assert abs(np.mean(pulls)) < 0.4
    assert 0.75 < np.std(pulls) < 1.3


def test_fit_window_figures_follow_the_fitted_components():
    counts = histogram(np.random.default_rng(2), 2000, 800, 8000)
    result = fit_mass(counts, EDGES, FitSettings(window=3.0), MASS_DS, 0.01)
    assert result.ok
    # 99.73% of the Gaussian lies within ±3σ.
    assert result.signal == pytest.approx(0.9973 * result.raw_yield, rel=1e-3)
    assert result.significance == pytest.approx(
        result.signal / np.sqrt(result.signal + result.background)
    )
    assert result.values["mean"] == pytest.approx(MASS_DS, abs=0.001)
    assert result.ndf == len(EDGES) - 1 - 9
    assert 0.5 < result.chi2 / result.ndf < 2


def test_fixed_mean_and_width_stay_at_the_mc_values():
    counts = histogram(np.random.default_rng(3), 500, 200, 3000)
    settings = FitSettings(fix_mean=True, fix_sigma=True)
    result = fit_mass(counts, EDGES, settings, 1.9690, 0.0105)
    assert result.ok
    assert result.values["mean"] == 1.9690
    assert result.values["sigma"] == 0.0105
    free = fit_mass(counts, EDGES, FitSettings(), 1.9690, 0.0105)
    assert result.raw_yield_error < free.raw_yield_error


def test_a_fit_without_candidates_is_reported_failed_with_no_numbers(tmp_path):
    counts = np.zeros(len(EDGES) - 1)
    counts[10] = 3
    result = fit_mass(counts, EDGES, FitSettings())
    assert not result.ok
    summary = result.summary()
    assert summary["status"].startswith("too few candidates")
    assert summary["raw_yield"] is None and summary["significance"] is None
    plot_fit(counts, EDGES, FitSettings(), result, tmp_path / "fit.png", "empty")
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_mass_histogram_is_a_root_th1(tmp_path):
    counts = histogram(np.random.default_rng(4), 100, 50, 500)
    path = tmp_path / "mass.root"
    write_root_histogram(path, "hMass_pt2_4", counts, EDGES, "2 < pT < 4")
    with uproot.open(path) as file:
        th1 = file["hMass_pt2_4"]
        assert th1.classname.startswith("TH1D")
        values, edges = th1.to_numpy()
    np.testing.assert_array_equal(values, counts)
    np.testing.assert_allclose(edges, EDGES)


@pytest.mark.parametrize(("passed", "total"), [(0, 10), (3, 10), (10, 10), (57, 400)])
@pytest.mark.parametrize("level", [0.6827, 0.95])
def test_clopper_pearson_matches_the_binomial_tails(passed, total, level):
    low, high = clopper_pearson(passed, total, level)
    tail = (1 - level) / 2
    assert low <= passed / total <= high
    # The bounds are where observing `passed` or more (fewer) becomes as
    # unlikely as the tail.
    if passed > 0:
        assert binom.sf(passed - 1, total, low) == pytest.approx(tail, rel=1e-6)
    else:
        assert low == 0
    if passed < total:
        assert binom.cdf(passed, total, high) == pytest.approx(tail, rel=1e-6)
    else:
        assert high == 1


def test_clopper_pearson_of_no_trials_is_the_whole_range():
    assert clopper_pearson(0, 0, 0.6827) == (0.0, 1.0)


def test_closure_pull_is_none_without_an_error():
    from hfml.closure import _pull

    assert _pull(110.0, 100, 5.0) == 2.0
    assert _pull(None, 100, None) is None
    assert json.loads(json.dumps({"p": _pull(1.0, 1, 0.0)})) == {"p": None}

"""The working-point scan: O2Physics' comparisons, counting, the optimum."""

import copy

import numpy as np
import pytest

from hfml import config as hfml_config
from hfml.errors import ConfigError
from hfml.inference import passes
from hfml.o2 import MASS_DS
from hfml.workingpoint import (
    Inputs,
    at_cuts,
    best_point,
    grid_counts,
    optimised_row,
    scan,
    scan_axes,
)


@pytest.fixture
def optimise_config(config):
    config = copy.deepcopy(config)
    config["pt_bins"] = [2, 4]
    config["selection"]["cuts"] = "optimise"
    config["selection"]["optimise"] |= {
        "scan": {
            "bkg": {"range": [0.01, 0.1], "steps": 10, "log": False},
            "prompt": {"range": [0.2, 0.9], "steps": 8, "log": False},
        },
        "signal": [5000.0],
    }
    return config


def test_grid_values_pass_as_o2physics_compares(optimise_config):
    axes = scan_axes(optimise_config)
    rng = np.random.default_rng(3)
    scores = rng.random((5000, 3)).astype(np.float32)
    # Scores exactly on the cuts, and float32 neighbours of double cuts.
    scores[:10, 0] = np.float32(0.03)
    scores[10:20, 1] = np.float32(0.3)
    scores[20:30, 0] = 0.02
    masses = np.zeros(len(scores), np.int64)
    counts = grid_counts(axes, scores, masses, 1)[..., 0]
    for i, bkg in enumerate(axes[0].values):
        for j, prompt in enumerate(axes[1].values):
            row = [bkg, prompt, 0.0]
            assert counts[i, j] == passes(scores, row, [0, 1, 1]).sum()
    # Loosest first: bkg cuts fall, prompt cuts rise along the axes.
    assert axes[0].values[0] == pytest.approx(0.1)
    assert axes[1].values[0] == pytest.approx(0.2)


def constructed(rng, n_background=200_000, n_signal=5000):
    """Background flat in mass and scores; the signal has bkg score ≤ 0.05 and
    prompt score ≥ 0.6, so the best cuts are exactly (0.05, 0.6)."""
    background = np.column_stack(
        [rng.random(n_background), rng.random(n_background), rng.random(n_background)]
    )
    masses = rng.uniform(1.72, 2.18, n_background)

    def signal_scores(n):
        return np.column_stack(
            [rng.uniform(0, 0.05, n), rng.uniform(0.6, 1, n), rng.random(n) * 0.01]
        )

    masses = np.concatenate([masses, rng.normal(MASS_DS, 0.01, n_signal)])
    scores = np.concatenate([background, signal_scores(n_signal)]).astype(np.float32)
    held_out = signal_scores(20_000).astype(np.float32)
    return Inputs(
        masses, scores, held_out, len(held_out), n_signal * 0.9545, MASS_DS, 0.01
    )


def test_scan_finds_the_known_optimum(optimise_config):
    config = optimise_config
    config["selection"]["optimise"]["scan"] = {
        "bkg": {"range": [0.01, 0.13], "steps": 13, "log": False},
        "prompt": {"range": [0.2, 0.9], "steps": 8, "log": False},
    }
    config["fit"]["dplus_peak"] = False
    inputs = constructed(np.random.default_rng(5))
    grid = scan(config, inputs)
    point = best_point(grid["significance"], grid["allowed"])
    row = optimised_row(config, grid["axes"], point)
    assert row == pytest.approx([0.05, 0.6, 0.0])
    # The whole-grid counting and a direct evaluation agree at the optimum.
    direct = at_cuts(config, inputs, row)
    assert direct["significance"] == pytest.approx(grid["significance"][point])
    assert direct["efficiency"] == pytest.approx(1.0)
    # S is the whole signal there; B the flat background in the ±2σ window.
    assert direct["signal"] == pytest.approx(5000 * 0.9545)
    expected_b = 200_000 * 0.05 * 0.4 * 0.04 / 0.46
    assert direct["background"] == pytest.approx(expected_b, rel=0.1)


def test_constraints_move_the_optimum_and_can_exclude_everything(optimise_config):
    config = optimise_config
    inputs = constructed(np.random.default_rng(6))
    config["selection"]["optimise"]["min_efficiency"] = 1.0
    grid = scan(config, inputs)
    assert np.all(grid["efficiency"][grid["allowed"]] >= 1.0)
    config["selection"]["optimise"]["min_signal_over_background"] = 1e6
    grid = scan(config, inputs)
    assert not grid["allowed"].any()
    with pytest.raises(Exception, match="no grid point is allowed"):
        best_point(grid["significance"], grid["allowed"])


def check(raw, schema):
    return hfml_config.validate(copy.deepcopy(raw), schema)


def test_scan_outside_the_loose_cuts_is_a_config_error(raw_config, schema):
    raw_config["selection"]["optimise"]["scan"]["bkg"]["range"] = [0.01, 0.7]
    with pytest.raises(ConfigError, match=r"scan.bkg.range.*loose cut 0.5"):
        check(raw_config, schema)


def test_scan_of_an_unknown_class_names_the_nearest(raw_config, schema):
    scan_config = raw_config["selection"]["optimise"]["scan"]
    scan_config["promt"] = scan_config.pop("prompt")
    with pytest.raises(ConfigError, match=r"'promt' is not a class.*'prompt'"):
        check(raw_config, schema)


def test_scan_of_a_class_without_cut_is_a_config_error(raw_config, schema):
    raw_config["selection"]["cut_dirs"] = [0, 2, 1]
    with pytest.raises(ConfigError, match=r"scan.prompt.range.*CutNot"):
        check(raw_config, schema)


def test_table_cut_looser_than_the_loose_cut_is_a_config_error(raw_config, schema):
    raw_config["selection"]["cuts"] = [[0.05, 0.0, 0.0]] * 3 + [[0.6, 0.0, 0.0]]
    with pytest.raises(ConfigError, match=r"cuts\[3\]\[0\].*pt8_12.*looser"):
        check(raw_config, schema)


def test_expected_yields_need_one_per_bin(raw_config, schema):
    raw_config["selection"]["optimise"]["signal"] = [100.0, 200.0]
    with pytest.raises(ConfigError, match=r"optimise.signal': 2 .* 4 pT bins"):
        check(raw_config, schema)


def test_one_dimensional_scan_and_its_figures(optimise_config, tmp_path):
    from hfml.workingpoint import plot_curve, plot_map

    config = optimise_config
    config["selection"]["optimise"]["scan"] = {
        "bkg": {"range": [0.01, 0.13], "steps": 13, "log": False}
    }
    config["fit"]["dplus_peak"] = False
    inputs = constructed(np.random.default_rng(7))
    grid = scan(config, inputs)
    axes = grid.pop("axes")
    assert grid["significance"].shape == (13,)
    point = best_point(grid["significance"], grid["allowed"])
    row = optimised_row(config, axes, point)
    assert row == pytest.approx([0.05, 0.0, 0.0])
    chosen = at_cuts(config, inputs, row)
    plot_map(axes, grid, row, point, tmp_path / "map.png", "pt2_4", config)
    plot_curve(grid, chosen, point, tmp_path / "curve.png", "pt2_4", config)
    assert (tmp_path / "map.png").stat().st_size > 10_000
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_scan_is_checked_with_a_cuts_table_too(raw_config, schema):
    # The scan also runs with given cuts, to show where they lie.
    raw_config["selection"]["cuts"] = [[0.05, 0.0, 0.0]] * 4
    raw_config["selection"]["optimise"]["signal_class"] = "bkg"
    with pytest.raises(ConfigError, match=r"signal_class': 'bkg' is not an MC class"):
        check(raw_config, schema)

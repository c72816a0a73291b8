"""The toy sample: O2 layout, determinism, and physics a BDT can learn."""

import numpy as np
import pandas as pd
import pytest
import uproot

from hfml.o2 import LITE_BRANCHES, MC_TRUTH_BRANCHES, TOF_MISSING
from hfml.toy import generate_file, truth_summary, write_toy_file
from hfml.toy.generate import composition
from hfml.toy.physics import MASS_DPLUS, MASS_DS


def table(content) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame(f) for f in content.frames.values()], ignore_index=True
    )


@pytest.fixture(scope="module")
def toy():
    from tests.conftest import TINY_TOY

    return TINY_TOY


@pytest.fixture(scope="module")
def mc(toy):
    return generate_file("mc", 0, toy)


@pytest.fixture(scope="module")
def data(toy):
    return generate_file("data", 0, toy)


def auc(signal: np.ndarray, background: np.ndarray) -> float:
    """Area under the ROC curve of a single variable (Mann-Whitney U / n m)."""
    values = np.concatenate([signal, background])
    ranks = pd.Series(values).rank().to_numpy()
    u = ranks[: len(signal)].sum() - len(signal) * (len(signal) + 1) / 2
    return u / (len(signal) * len(background))


def test_file_has_o2_layout(tmp_path, toy):
    """DF_ folders hold the lite tree with O2Physics' branch names and types,
    next to a top-level non-DF object, as real files do."""
    root = tmp_path / "AO2D.root"
    write_toy_file("data", 0, toy, root, tmp_path / "t.parquet", tmp_path / "g.parquet")
    with uproot.open(root) as file:
        keys = file.keys(recursive=False, cycle=False)
        assert "metaData" in keys
        folders = [k for k in keys if k.startswith("DF_")]
        assert len(folders) == toy["data"]["dataframes_per_file"]
        tree = file[f"{folders[0]}/O2hfcanddslite"]
        assert [b.name for b in tree.branches] == list(LITE_BRANCHES)
        for branch in tree.branches:
            dtype = np.dtype(branch.interpretation.to_dtype).newbyteorder("=")
            assert dtype == LITE_BRANCHES[branch.name], branch.name
    truth = pd.read_parquet(tmp_path / "t.parquet")
    assert len(truth) == sum(
        len(f["fM"]) for f in generate_file("data", 0, toy).frames.values()
    )


def test_same_seed_same_sample_other_seed_other_sample(toy, data):
    again = generate_file("data", 0, toy)
    for folder, arrays in data.frames.items():
        for name in arrays:
            np.testing.assert_array_equal(arrays[name], again.frames[folder][name])
    other = generate_file("data", 0, {**toy, "seed": toy["seed"] + 1})
    first = next(iter(other.frames))
    assert not np.array_equal(other.frames[first]["fM"], data.frames[first]["fM"])
    next_file = next(iter(generate_file("data", 1, toy).frames.values()))
    assert not np.array_equal(next_file["fM"], data.frames[first]["fM"])


def test_mc_truth_is_zero_in_data_and_filled_in_mc(data, mc):
    frame = table(data)
    for name in MC_TRUTH_BRANCHES:
        assert not frame[name].any(), name
    truth = data.truth
    assert (truth["flag"].abs() == 5).sum() > 0
    mc_frame = table(mc)
    flags = set(np.unique(mc_frame["fFlagMcMatchRec"]))
    assert flags == {-5, -4, 0, 4, 5}
    signal = mc_frame["fFlagMcMatchRec"] != 0
    assert (
        np.sign(mc_frame.loc[signal, "fFlagMcMatchRec"])
        == mc_frame.loc[signal, "fSign"]
    ).all()
    assert set(mc_frame.loc[signal, "fOriginMcRec"]) == {1, 2}
    channels = set(
        mc_frame.loc[mc_frame["fFlagMcMatchRec"].abs() == 5, "fFlagMcDecayChanRec"]
    )
    assert channels == {6, 8}
    nonprompt = mc_frame["fOriginMcRec"] == 2
    assert (mc_frame.loc[nonprompt, "fPdgBhadMotherPart"] > 500).all()


def test_sidecar_truth_matches_tree_rows(data):
    truth = data.truth
    for folder, arrays in data.frames.items():
        rows = truth[truth["df"] == int(folder.removeprefix("DF_"))]
        assert rows["entry"].tolist() == list(range(len(arrays["fM"])))


def test_background_dominates_data(data):
    flags = data.truth["flag"]
    assert (flags == 0).sum() > 5 * (flags != 0).sum()


def test_generated_counts_follow_composition(toy, mc):
    expected = composition("mc", toy["mc"])
    assert len(mc.generated) == sum(expected.values())
    in_tree = mc.generated["in_tree"].sum()
    assert in_tree == (mc.truth["flag"] != 0).sum()
    assert 0.05 < in_tree / len(mc.generated) < 0.6


@pytest.mark.parametrize(("flag", "mass"), [(5, MASS_DS), (4, MASS_DPLUS)])
def test_mass_peaks_have_configured_position_and_width(toy, mc, flag, mass):
    frame = table(mc)
    peak = frame[frame["fFlagMcMatchRec"].abs() == flag]
    pt_true = mc.truth.loc[mc.truth["flag"].abs() == flag, "pt_true"]
    assert len(peak) == len(pt_true)
    resolution = toy["mass_resolution"]
    for low, high in [(1, 4), (4, 12)]:
        in_slice = ((pt_true >= low) & (pt_true < high)).to_numpy()
        masses = peak["fM"].to_numpy()[in_slice]
        width = np.mean(
            resolution["constant"] + resolution["slope"] * pt_true[in_slice]
        )
        error = width / np.sqrt(len(masses))
        assert abs(np.mean(masses) - mass) < 4 * error
        assert np.std(masses) == pytest.approx(
            width, rel=4 / np.sqrt(len(masses)) + 0.02
        )


def test_signal_is_displaced(mc):
    frame = table(mc)
    origin = frame["fOriginMcRec"]
    prompt = frame.loc[(frame["fFlagMcMatchRec"].abs() == 5) & (origin == 1)]
    nonprompt = frame.loc[(frame["fFlagMcMatchRec"].abs() == 5) & (origin == 2)]
    background = frame.loc[frame["fFlagMcMatchRec"] == 0]
    length = "fDecayLengthXYNormalised"
    assert (
        np.median(nonprompt[length])
        > np.median(prompt[length])
        > np.median(background[length])
    )

    def far(frame):
        return np.mean(np.abs(frame["fImpactParameterXY"]) > 0.01)

    assert far(nonprompt) > 2 * far(prompt)


def test_no_single_feature_separates_signal_from_background(mc, data):
    """Realistic, not trivially separable: every variable overlaps."""
    frame = table(mc)
    signal = frame[frame["fFlagMcMatchRec"].abs() == 5]
    background = table(data)[data.truth["flag"].to_numpy() == 0]
    features = [
        "fCpa",
        "fDecayLengthXYNormalised",
        "fMaxNormalisedDeltaIP",
        "fChi2PCA",
        "fDeltaMassPhi",
        "fAbsCos3PiK",
        "fNSigTpcTofKa0",
    ]
    separations = {
        f: auc(signal[f].to_numpy(), background[f].to_numpy()) for f in features
    }
    best = max(max(a, 1 - a) for a in separations.values())
    assert 0.6 < best < 0.95, separations


def test_tof_missing_for_a_fraction_of_tracks(data):
    frame = table(data)
    missing = frame["fNSigTofKa0"] == TOF_MISSING
    assert 0.15 < missing.mean() < 0.7
    assert (frame.loc[missing, "fNSigTofPi0"] == TOF_MISSING).all()
    combined = frame.loc[missing, "fNSigTpcTofKa0"]
    np.testing.assert_allclose(combined, np.abs(frame.loc[missing, "fNSigTpcKa0"]))


def test_true_kaons_have_unit_kaon_nsigma(mc):
    frame = table(mc)
    kaons = frame[frame["fFlagMcMatchRec"] != 0]["fNSigTpcKa0"]
    assert abs(kaons.mean()) < 0.1
    assert kaons.std() == pytest.approx(1.0, abs=0.1)


def test_truth_summary_counts_per_bin(tmp_path, toy):
    paths = []
    for index in range(2):
        root, truth, gen = (tmp_path / f"{index}{s}" for s in (".root", "t.pq", "g.pq"))
        write_toy_file("data", index, toy, root, truth, gen)
        paths.append((str(gen), str(truth)))
    summary = truth_summary([g for g, _ in paths], [t for _, t in paths], [2, 4, 8])
    assert list(summary) == ["pt2_4", "pt4_8"]
    generated = pd.concat([pd.read_parquet(g) for g, _ in paths])
    ds = generated[(generated["flag"].abs() == 5) & (generated["origin"] == 1)]
    expected = ((ds["pt"] >= 2) & (ds["pt"] < 4)).sum()
    assert summary["pt2_4"]["ds_prompt"]["generated"] == expected
    counts = summary["pt2_4"]["ds_prompt"]
    assert counts["in_tree"] < counts["generated"]
    assert counts["generated_y05"] < counts["generated"]

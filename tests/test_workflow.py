"""The Snakemake workflow end to end on the tiny configuration."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import uproot

from tests.conftest import CONFIGS, snakemake


@pytest.mark.workflow
def test_tiny_run_skims_every_class_and_bin(tiny_run):
    counts = json.loads((tiny_run / "results" / "skim" / "counts.json").read_text())
    assert counts["sources"]["data"]["files"] == 2
    assert counts["sources"]["mc"]["files"] == 1
    for name in ("bkg", "prompt", "nonprompt"):
        for ptbin in ("pt2_4", "pt4_8"):
            merged = pd.read_parquet(
                tiny_run / "results" / "skim" / name / f"{ptbin}.parquet"
            )
            assert len(merged) == counts["classes"][name][ptbin]["selected"] > 0
            assert (merged["fPt"] >= 2).all()


@pytest.mark.workflow
def test_tiny_run_logs_every_job_and_writes_truth(tiny_run):
    logs = list((tiny_run / "logs" / "skim").rglob("*.log"))
    assert len(logs) == 3 + 6 + 1
    skim_logs = [p for p in logs if p.parent.name in ("data", "mc")]
    assert all("pass the preselection" in p.read_text() for p in skim_logs)
    truth = json.loads(
        (tiny_run / "results" / "toy" / "truth_summary.json").read_text()
    )
    assert set(truth) == {"pt2_4", "pt4_8"}


@pytest.mark.workflow
def test_tiny_run_trains_and_evaluates_every_bin(tiny_run):
    for ptbin in ("pt2_4", "pt4_8"):
        models = tiny_run / "results" / "models" / ptbin
        assert (models / "model.json").exists()
        metrics = json.loads((models / "metrics.json").read_text())
        assert metrics["auc_test"]["ovr"]["bkg"] > 0.8
        assert len(list((models / "plots").glob("*.png"))) == 7
        train = pd.read_parquet(
            tiny_run / "results" / "samples" / ptbin / "train.parquet"
        )
        test = pd.read_parquet(
            tiny_run / "results" / "samples" / ptbin / "test.parquet"
        )
        merged = train.merge(test, how="inner", on=list(test.columns))
        assert merged.empty


@pytest.mark.workflow
def test_tiny_run_applies_validated_models_as_o2physics_would(tiny_run):
    import uproot

    from hfml.inference import MlResponse

    results = tiny_run / "results"
    for ptbin in ("pt2_4", "pt4_8"):
        check = json.loads(
            (results / "models" / ptbin / "onnx_validation.json").read_text()
        )
        assert check["decision_changes"] == 0 and check["max_abs_difference"] < 1e-5
    dpl = json.loads((results / "o2physics" / "dpl-config.json").read_text())
    selector = dpl["hf-candidate-selector-ds-to-k-k-pi"]
    assert selector["binsPtMl"]["values"] == ["2.0", "4.0", "8.0"]
    assert "impactParameterXY0" in selector["namesInputFeatures"]["values"]

    counts = json.loads((results / "apply" / "counts.json").read_text())
    candidates = pd.concat(
        pd.read_parquet(p) for p in sorted((results / "apply").glob("group*.parquet"))
    )
    assert counts["files"] == 2
    assert len(candidates) == sum(b["loose"] for b in counts["bins"].values())
    # The deployed cuts are those of the cuts table (given, in the tiny run).
    cuts = json.loads((results / "working_point" / "cuts.json").read_text())
    assert cuts["source"] == "table"
    assert cuts["cuts"] == [[0.1, 0.0, 0.0], [0.1, 0.0, 0.0]]
    assert selector["cutsMl"]["values"] == [
        [repr(float(c)) for c in row] for row in cuts["cuts"]
    ]

    # Re-score some written candidates from the raw tree, one model per bin.
    features = selector["namesInputFeatures"]["values"]
    branches = [
        f"fImpactParameter{n[-1]}"
        if n.startswith("impactParameterXY") and n[-1].isdigit()
        else "f" + n[0].upper() + n[1:]
        for n in features
    ]
    first = candidates[candidates["file"] == candidates["file"].iloc[0]].head(50)
    with uproot.open(tiny_run / first["file"].iloc[0]) as file:
        rows = []
        for df, entry in zip(first["df"], first["entry"], strict=True):
            tree = file[f"DF_{df}/O2hfcanddslite"]
            arrays = tree.arrays(
                [*branches, "fPt"],
                entry_start=entry,
                entry_stop=entry + 1,
                library="np",
            )
            rows.append([arrays[b][0] for b in [*branches, "fPt"]])
    rows = np.array(rows, np.float32)
    response = MlResponse(
        [results / "models" / b / "model.onnx" for b in ("pt2_4", "pt4_8")],
        [2, 4, 8],
        [[0.5, 0.0, 0.0], [0.5, 0.0, 0.0]],
        [0, 1, 1],
        3,
        len(features),
    )
    scores = response.scores(rows[:, :-1], rows[:, -1])
    written = first[["score_bkg", "score_prompt", "score_nonprompt"]].to_numpy()
    np.testing.assert_array_equal(scores, written)
    # Written are exactly the candidates O2Physics keeps with the loose cuts.
    assert response.select(scores, rows[:, -1]).all()
    assert (candidates["score_bkg"] <= 0.5).all()


@pytest.mark.workflow
def test_tiny_run_fits_measures_efficiencies_and_closes_on_the_truth(tiny_run):
    results = tiny_run / "results"
    summary = json.loads((results / "summary.json").read_text())
    closure = json.loads((results / "closure" / "closure.json").read_text())
    assert set(summary["bins"]) == set(closure["bins"]) == {"pt2_4", "pt4_8"}
    for ptbin, row in summary["bins"].items():
        fit = json.loads((results / "fits" / ptbin / "fit.json").read_text())
        assert row["fit"]["status"] == fit["status"]
        assert row["fit"]["candidates"] > 0
        assert (results / "fits" / ptbin / "mass_fit.png").stat().st_size > 0
        with uproot.open(results / "fits" / ptbin / "mass.root") as file:
            assert file[f"hMass_{ptbin}"].values().sum() == fit["candidates"]
        for name in ("prompt", "nonprompt"):
            low, high = row["efficiency"][name]["interval"]
            assert 0 < low <= row["efficiency"][name]["value"] <= high < 1
        truth = row["toy_truth"]
        # The fit holds the apply outputs' candidates of the bin that pass
        # its cuts, and the truth counts some of them as true Ds+.
        candidates = pd.concat(
            pd.read_parquet(p) for p in (results / "apply").glob("*.parquet")
        )
        low_pt, high_pt = row["pt_range"]
        in_bin = candidates[
            (candidates["score_bkg"] <= row["cuts"][0])
            & (candidates["fPt"] >= low_pt)
            & (candidates["fPt"] < high_pt)
            & (candidates["fM"] >= 1.72)
            & (candidates["fM"] < 2.18)
        ]
        assert len(in_bin) == fit["candidates"]
        assert 0 < truth["true_selected"] <= len(in_bin)
        scan = json.loads((results / "working_point" / ptbin / "scan.json").read_text())
        assert scan["cuts"] == row["cuts"] == [0.1, 0.0, 0.0]
        assert row["expected"]["signal_class"] == "prompt"
        for name in ("significance_map", "significance_efficiency"):
            assert (results / "working_point" / ptbin / f"{name}.png").exists()
        if fit["status"] == "ok":
            assert abs(truth["yield_pull"]) < 5
    assert (results / "efficiency" / "efficiency.png").exists()
    assert (results / "closure" / "closure.png").exists()


@pytest.mark.workflow
def test_default_run_closes_on_the_toy_truth(tmp_path):
    """The README's promise: the default configuration, from scratch, measures
    yields and efficiencies that agree with the truth (every |pull| < 3)."""
    snakemake(tmp_path, "results/closure/closure.json", configs=CONFIGS[:1])
    closure = json.loads((tmp_path / "results/closure/closure.json").read_text())
    for ptbin, row in closure["bins"].items():
        assert row["fit_status"] == "ok", ptbin
        pulls = [row["yield_pull"], *(e["pull"] for e in row["efficiency"].values())]
        assert all(abs(p) < 3 for p in pulls), (ptbin, pulls)
    assert closure["closes"]


@pytest.mark.workflow
def test_tuned_parameters_reach_training(tiny_run, tmp_path):
    workdir = tmp_path / "tuned"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    override = workdir / "optuna.yaml"
    override.write_text(
        "optuna: {enabled: true, n_trials: 2, workers: 2, folds: 2, max_auc_gap: 1.0}\n"
    )
    snakemake(
        workdir,
        "results/models/pt4_8/training.json",
        configs=[*CONFIGS, str(override)],
    )
    best = json.loads((workdir / "results/models/pt4_8/best_params.json").read_text())
    info = json.loads((workdir / "results/models/pt4_8/training.json").read_text())
    assert best["trials_finished"] == 2
    assert info["cv"] == best
    for name, value in best["parameters"].items():
        assert info["hyperparameters"][name] == value
    assert (workdir / "results/models/pt4_8/plots/optuna_history.png").exists()


@pytest.mark.workflow
def test_rerun_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_bad_config_stops_the_workflow_at_load(tmp_path):
    override = tmp_path / "bad.yaml"
    override.write_text("pt_bins: [4, 2]\n")
    configs = [*CONFIGS, str(override)]
    result = snakemake(tmp_path, "--dry-run", check=False, configs=configs)
    assert result.returncode != 0
    assert "pt_bins[1] = 2 follows pt_bins[0] = 4" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def chromium(*args, timeout=180):
    """Headless Chromium on a local page, JavaScript run to completion."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "the report test needs Chromium (Debian: apt install chromium)"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1600,1200",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=True
    )


@pytest.mark.workflow
def test_report_renders_the_summary_table_in_chromium(tiny_run, tmp_path):
    from matplotlib.image import imread

    snakemake(tiny_run, "--report", "results/report.html")
    page = (tiny_run / "results" / "report.html").as_uri()
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    screenshot = tmp_path / "report.png"
    chromium(profile, f"--screenshot={screenshot}", page)
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (1200, 1600)
    # A rendered page, not a blank one: many distinct colours.
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50

    dom = chromium(profile, "--dump-dom", page).stdout
    # The page's data sits in scripts; what the scripts drew is the rest.
    drawn = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)
    assert 'id="hfml-summary"' in drawn
    assert "Summary per pT bin" in drawn
    summary = json.loads((tiny_run / "results" / "summary.json").read_text())
    for row in summary["bins"].values():
        low, high = row["pt_range"]
        assert f"<th>{low:g}–{high:g}</th>" in drawn


@pytest.mark.workflow
def test_skim_and_apply_group_files_per_job(tmp_path):
    override = tmp_path / "grouped.yaml"
    override.write_text("skim: {files_per_job: 2}\napply: {files_per_job: 2}\n")
    result = snakemake(
        tmp_path, "-n", "--quiet", "rules", configs=[*CONFIGS, str(override)]
    )
    jobs = dict(
        line.split()[:2] for line in result.stdout.splitlines() if line.count(" ") > 1
    )
    # The tiny run has two data files and one MC file.
    assert jobs["skim_data"] == "1"
    assert jobs["skim_mc"] == "1"
    assert jobs["apply"] == "1"


@pytest.mark.workflow
def test_jobs_declare_the_configured_resources(tmp_path):
    override = tmp_path / "resources.yaml"
    override.write_text("resources: {apply: {mem_mb: 3000, runtime: 90}}\n")
    result = snakemake(tmp_path, "-n", configs=[*CONFIGS, str(override)])
    jobs = result.stdout.split("\n\n")
    apply = [job for job in jobs if "rule apply:" in job]
    assert apply
    for job in apply:
        assert "runtime=90," in job and "mem_mb=3000," in job
        # The same needs under the names of HTCondor's executor.
        assert "htcondor_request_mem_mb=3000," in job
        assert "allowed_execute_duration=5400," in job
    # Every job but the target asks for memory and time.
    for job in jobs:
        if "rule " in job and "localrule all" not in job:
            assert "mem_mb=" in job and "runtime=" in job, job

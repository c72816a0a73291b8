"""Reliability: outputs complete or absent, non-finite values, provenance,
identical reruns, and jobs killed while writing."""

import copy
import json
import os
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
import uproot
import xxhash

from hfml import __version__, provenance
from hfml.apply import apply_files
from hfml.cli import main
from hfml.config import check_selection
from hfml.errors import ConfigError, InputError
from hfml.export import export
from hfml.files import atomic_outputs
from hfml.io import non_finite, write_o2_file
from hfml.massfit import write_root_histogram
from hfml.models import Model, load
from hfml.o2 import DEFAULT_TREE, LITE_BRANCHES
from tests.conftest import REPO, candidate_arrays, snakemake
from tests.test_skim import assert_nothing_written, run_skim

# Outputs appear complete or not at all.


def test_failed_writes_leave_nothing_and_stale_temporaries_go(tmp_path):
    final = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError), atomic_outputs(final) as (temporary,):
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    # What a SIGKILLed job leaves: a temporary folder with a partial file.
    stale = tmp_path / "out" / ".table.parquet.x1y2.tmp"
    stale.mkdir(parents=True)
    (stale / "table.parquet").write_text("half")
    with atomic_outputs(final) as (temporary,):
        assert temporary.name == "table.parquet"
        assert not final.exists()
        temporary.write_text("whole")
    assert final.read_text() == "whole"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["table.parquet"]

    # A move that fails takes back the outputs moved before it.
    first, blocked = tmp_path / "two" / "a.json", tmp_path / "two" / "b.json"
    (blocked / "in-the-way").mkdir(parents=True)
    with pytest.raises(OSError), atomic_outputs(first, blocked) as temporaries:
        for temporary in temporaries:
            temporary.write_text("whole")
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["b.json"]


def test_root_files_record_their_final_name_and_same_identity_same_bytes(tmp_path):
    arrays = candidate_arrays(100)
    frames = {"DF_1": arrays}
    paths = [tmp_path / "a" / "AO2D.root", tmp_path / "b" / "AO2D.root"]
    for path in paths:
        with atomic_outputs(path) as (temporary,):
            write_o2_file(temporary, frames, DEFAULT_TREE, LITE_BRANCHES, "", "toy 1")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert b"AO2D.root" in paths[0].read_bytes()[:400]
    with uproot.open(paths[0]) as file:
        written = file[f"DF_1/{DEFAULT_TREE}"]["fM"].array(library="np")
    np.testing.assert_array_equal(written, arrays["fM"])


# NaN and infinite values: the policy of inputs.non_finite.


def poisoned_file(path, config):
    """A file with NaN in two candidates' first feature, +inf in one's mass."""
    arrays = candidate_arrays(200, seed=3)
    arrays["fPt"][:] = 3.0
    feature = config["features"][0]
    arrays[feature][[5, 17]] = np.nan
    arrays["fM"][40] = np.inf
    write_o2_file(path, {"DF_1000": arrays}, DEFAULT_TREE, LITE_BRANCHES)
    return feature


def test_non_finite_values_stop_the_skim_saying_how_many_and_where(
    tmp_path, skim_config
):
    feature = poisoned_file(tmp_path / "nan.root", skim_config)
    with pytest.raises(InputError) as err:
        run_skim(tmp_path, tmp_path / "nan.root", "data", skim_config)
    message = str(err.value)
    assert "nan.root" in message
    assert "3 of the 200 candidates of a chunk have NaN or infinite values" in message
    assert f"{feature}: 2 NaN" in message and "fM: 1 +inf" in message
    assert f"DF_1000/{DEFAULT_TREE} entry 5" in message
    assert "'inputs.non_finite'" in message
    assert_nothing_written(tmp_path)


def test_non_finite_candidates_are_dropped_and_counted_on_request(
    tmp_path, skim_config
):
    skim_config["inputs"]["non_finite"] = "drop"
    poisoned_file(tmp_path / "nan.root", skim_config)
    outputs, counts = run_skim(tmp_path, tmp_path / "nan.root", "data", skim_config)
    assert counts["candidates_read"] == 200
    assert counts["non_finite"] == 3
    skimmed = pd.concat(pd.read_parquet(p) for p in outputs.values())
    assert np.isfinite(skimmed[skim_config["features"]].to_numpy()).all()
    assert np.isfinite(skimmed["fM"]).all()


@pytest.mark.parametrize("source", ["data", "mc"])
def test_dropped_candidates_count_before_the_preselection(
    tmp_path, skim_config, source
):
    """Efficiencies divide by the candidates before the preselection: those
    dropped for a NaN must stay in that count (data loses them as well)."""
    skim_config["inputs"]["non_finite"] = "drop"
    arrays = candidate_arrays(400, seed=4)
    feature = skim_config["features"][0]
    counts = {}
    for name, poisoned in (("clean", []), ("nan", [3, 8, 100, 250])):
        values = {k: v.copy() for k, v in arrays.items()}
        values[feature][poisoned] = np.nan
        write_o2_file(
            tmp_path / f"{name}.root", {"DF_7": values}, DEFAULT_TREE, LITE_BRANCHES
        )
        _, counts[name] = run_skim(
            tmp_path / name, tmp_path / f"{name}.root", source, skim_config
        )
    clean, dropped = counts["clean"], counts["nan"]
    assert dropped["non_finite"] == 4

    def per_bin(run, key):
        return {
            (name, b): n[key]
            for name, bins in run["classes"].items()
            for b, n in bins.items()
        }

    assert per_bin(clean, "before_preselection") == per_bin(
        dropped, "before_preselection"
    )
    selected = [sum(per_bin(run, "selected").values()) for run in (clean, dropped)]
    assert selected[0] - 4 <= selected[1] <= selected[0]


def test_features_of_one_pt_bin_are_checked_for_non_finite_values(
    tmp_path, skim_config
):
    extra = next(
        c
        for c, dtype in LITE_BRANCHES.items()
        if dtype.kind == "f" and c not in [*skim_config["features"], "fM", "fPt"]
    )
    skim_config["skim"]["columns"] = [extra]
    skim_config["training"]["per_bin"] = {
        "pt4_8": {"features": [*skim_config["features"], extra]}
    }
    arrays = candidate_arrays(50, seed=5)
    arrays[extra][7] = np.nan
    write_o2_file(tmp_path / "x.root", {"DF_2": arrays}, DEFAULT_TREE, LITE_BRANCHES)
    with pytest.raises(InputError, match=rf"{extra}: 1 NaN"):
        run_skim(tmp_path, tmp_path / "x.root", "data", skim_config)
    assert_nothing_written(tmp_path)


def test_non_finite_rows_of_parquet_inputs_are_named_by_row():
    chunk = pd.DataFrame(
        {"fCpa": [0.9, -np.inf, 0.8], "df": [-1, -1, -1], "entry": [0, 1, 2]}
    )
    with pytest.raises(InputError, match=r"fCpa: 1 -inf; first at row 1\)"):
        non_finite(chunk, ["fCpa"], "c.parquet", DEFAULT_TREE, "error")
    kept = non_finite(chunk, ["fCpa"], "c.parquet", DEFAULT_TREE, "drop")
    assert kept.tolist() == [False, True, False]


def test_apply_refuses_or_drops_non_finite_candidates(tmp_path, skim_config):
    config = copy.deepcopy(skim_config)
    config["inputs"]["training_fraction"] = 0.01
    features = config["features"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(features))).astype(np.float32)
    model = Model("xgboost", 3, {"n_estimators": 5}, seed=1, threads=1)
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 1), names=features)
    onnx_paths = []
    for k, edges in enumerate([(2, 4), (4, 8)]):
        proto = export(model, features, ["bkg", "prompt", "nonprompt"], edges, {})
        onnx_paths.append(str(tmp_path / f"m{k}.onnx"))
        (tmp_path / f"m{k}.onnx").write_bytes(proto.SerializeToString())
    poisoned_file(tmp_path / "nan.root", config)
    out = tmp_path / "out"
    args = ([str(tmp_path / "nan.root")], onnx_paths, out / "a.parquet", out / "a.json")
    with pytest.raises(
        InputError, match=r"3 of the \d+ candidates of a chunk have NaN or infinite"
    ):
        apply_files(config, *args)
    assert_nothing_written(tmp_path)
    config["inputs"]["non_finite"] = "drop"
    counts = apply_files(config, *args)
    assert counts["non_finite"] == 3
    assert sum(b["candidates"] for b in counts["bins"].values()) <= 197


def test_skim_counts_of_an_older_hfml_ask_for_a_rerun(tmp_path, config):
    from hfml.skim import sum_counts

    old = tmp_path / "counts.json"
    old.write_text('{"source": "data", "files": ["a.root"], "classes": {}}')
    with pytest.raises(InputError, match=r"counts.json' lack .*inputs.*rerun the skim"):
        sum_counts([str(old)], config)


# Configuration shapes the issue names that the other tests do not.


def test_cut_directions_must_match_the_classes(config):
    config["selection"]["cut_dirs"] = [0, 1]
    with pytest.raises(ConfigError, match=r"'selection.cut_dirs': 2 directions for 3"):
        check_selection(config)


def test_cuts_table_of_the_wrong_shape(config):
    n_bins = len(config["pt_bins"]) - 1
    config["selection"]["cuts"] = [[0.1, 0.0]] * n_bins
    with pytest.raises(ConfigError, match=rf"'selection.cuts'.*expected {n_bins} rows"):
        check_selection(config)


# Provenance.


RECORD = {
    "config": {"sha256": "ab" * 32, "sections": ["features", "training"]},
    "inputs": provenance.inputs_record(
        [{"path": "a.root", "bytes": 10, "xxh3_128": "0" * 32}]
    ),
    "software": provenance.software(),
}


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_models_keep_their_provenance_and_predictions(tmp_path, library):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    model = Model(library, 3, {"n_estimators": 8}, seed=1, threads=1)
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 1), names=["a", "b", "c"])
    path = tmp_path / ("model.json" if library == "xgboost" else "model.txt")
    model.save(path, RECORD)
    assert provenance.read(path) == RECORD
    np.testing.assert_array_equal(load(path).predict_proba(x), model.predict_proba(x))
    names = ["fCpa", "fDecayLength", "fCpaXY"]
    proto = export(load(path), names, ["a", "b", "c"], (2, 4), {}, RECORD)
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(proto.SerializeToString())
    assert provenance.read(onnx_path) == RECORD


def test_the_same_model_exports_to_the_same_bytes(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    model = Model("lightgbm", 2, {"n_estimators": 5}, seed=1, threads=1)
    model.fit(x, (x[:, 0] > 0).astype(int), names=["a", "b", "c"])
    names = ["fCpa", "fDecayLength", "fCpaXY"]
    protos = [export(model, names, ["a", "b"], (2, 4), {}, RECORD) for _ in "ab"]
    assert protos[0].SerializeToString() == protos[1].SerializeToString()


def test_mass_histograms_are_written_identically(tmp_path):
    edges = np.linspace(1.7, 2.2, 11)
    counts = np.arange(10.0)
    paths = [tmp_path / k / "mass.root" for k in "ab"]
    for path in paths:
        write_root_histogram(path, "hMass_pt2_4", counts, edges, "2-4 GeV/c")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    # Another histogram of the same name is another file, with another UUID.
    write_root_histogram(paths[1], "hMass_pt2_4", counts + 1, edges, "2-4 GeV/c")
    uuids = set()
    for path in paths:
        with uproot.open(path) as file:
            uuids.add(file.file.uuid)
    assert len(uuids) == 2


def test_provenance_command_reports_files_without_a_record(tmp_path, capsys):
    path = tmp_path / "metrics.json"
    path.write_text('{"auc": 0.9}')
    assert main(["provenance", str(path)]) == 2
    assert "holds no provenance record" in capsys.readouterr().err
    assert main(["provenance", str(tmp_path / "none.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    binary = tmp_path / "mass.root"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["provenance", str(binary)]) == 2
    assert "holds no provenance record" in capsys.readouterr().err
    damaged = tmp_path / "summary.json"
    damaged.write_text('{"provenance": "{\\"config\\": "}')
    assert main(["provenance", str(damaged)]) == 2
    assert "provenance record is damaged" in capsys.readouterr().err
    damaged.write_text('{"learner": [1, 2]}')
    assert main(["provenance", str(damaged)]) == 2
    assert "holds no provenance record" in capsys.readouterr().err


@pytest.mark.workflow
def test_every_model_onnx_file_and_summary_records_its_provenance(tiny_run, capsys):
    results = tiny_run / "results"
    counts = json.loads((results / "skim" / "counts.json").read_text())
    listed = counts["inputs"]
    assert len(listed) == 3  # two data files and one MC file
    first = tiny_run / listed[0]["path"]
    assert listed[0]["bytes"] == first.stat().st_size
    assert listed[0]["xxh3_128"] == xxhash.xxh3_128(first.read_bytes()).hexdigest()

    files = [results / "summary.json"]
    for ptbin in ("pt2_4", "pt4_8"):
        files += [results / "models" / ptbin / n for n in ("model.json", "model.onnx")]
    for path in files:
        record = provenance.read(path)
        assert record["inputs"]["list"] == listed
        assert record["software"]["hfml"] == __version__
        assert record["software"]["packages"]["onnxruntime"]
        git = record["software"]["git"]
        if (REPO / ".git").exists():
            assert len(git["commit"]) == 40
        assert main(["provenance", str(path)]) == 0
        text = capsys.readouterr().out
        assert record["config"]["sha256"] in text and listed[0]["xxh3_128"] in text
    model = provenance.read(results / "models" / "pt2_4" / "model.json")
    summary = provenance.read(results / "summary.json")
    # A model depends on the sections from the inputs to the training, and
    # its ONNX file records the same hash.
    assert {"inputs", "preselection", "skim", "training"} <= set(
        model["config"]["sections"]
    )
    onnx_model = onnx.load(str(results / "models" / "pt2_4" / "model.onnx"))
    metadata = {p.key: p.value for p in onnx_model.metadata_props}
    assert metadata["config_sha256"] == model["config"]["sha256"]
    # The summary depends on, and hashes, the whole configuration.
    assert {"training", "selection", "fit"} <= set(summary["config"]["sections"])


# Identical reruns.


def products(workdir):
    """What two runs of one configuration must give identically."""
    results = workdir / "results"
    paths = sorted(results.glob("models/*/model.onnx"))
    paths += sorted(results.glob("models/*/model.json"))
    paths += sorted(results.glob("apply/*.parquet"))
    paths += sorted(results.glob("skim/files/*/*/*/*.parquet"))
    paths += sorted(results.glob("fits/*/mass.root"))
    paths += [results / "working_point" / "cuts.json"]
    return {str(p.relative_to(workdir)): p.read_bytes() for p in paths}


@pytest.mark.workflow
def test_two_clean_runs_give_identical_models_scores_and_summary(tiny_run, tmp_path):
    snakemake(tmp_path)
    first, second = products(tiny_run), products(tmp_path)
    assert first.keys() == second.keys() and len(first) > 10
    for name, content in first.items():
        assert content == second[name], name
    first, second = (
        json.loads((w / "results" / "summary.json").read_text())
        for w in (tiny_run, tmp_path)
    )
    assert first == second


# Jobs killed while writing.


def kill_while_writing(workdir, target):
    """Rerun ``target``'s job with a hook that kills it, and Snakemake with it,
    right after its first parquet row group is written."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "tests" / "kill_on_write"), env.get("PYTHONPATH", "")]
    )
    env["HFML_KILL_AFTER_WRITES"] = "1"
    result = snakemake(workdir, target, "--forcerun", target, check=False, env=env)
    assert result.returncode == -9, result.stderr[-2000:]


@pytest.mark.workflow
@pytest.mark.parametrize(
    "target",
    ["results/skim/files/data/{}/bkg/pt2_4.parquet", "results/apply/{}.parquet"],
    ids=["skim", "apply"],
)
def test_job_killed_while_writing_leaves_no_output_and_reruns_identically(
    tiny_run, tmp_path, target
):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    path = sorted(workdir.glob(target.format("*")))[0]
    target = str(path.relative_to(workdir))
    # Every output of the job, and of its neighbours.
    folder = path.parents[2] if "skim" in target else path.parent
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    kill_while_writing(workdir, target)
    assert not path.exists()
    partial = list(path.parent.glob(f".{path.name}.*.tmp/{path.name}"))
    assert len(partial) == 1, "the job was not killed while writing its output"

    # After a crash, Snakemake's lock stays; the user unlocks and reruns.
    snakemake(workdir, "--unlock")
    snakemake(workdir, target)
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    for name, content in before.items():
        assert after[name] == content, name

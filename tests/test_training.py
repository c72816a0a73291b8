"""Training per pT bin: samples, both libraries, reproducibility, tuning."""

import copy
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from hfml import tuning
from hfml.errors import ConfigError
from hfml.models import MODEL_FILE, Model, load
from hfml.samples import LABEL, SampleError, build, target_sizes
from hfml.training import evaluate, make_samples, train
from hfml.workflow import EVALUATION_PLOTS

CLASSES = [
    {"name": "bkg", "source": "data", "query": ""},
    {"name": "prompt", "source": "mc", "query": ""},
    {"name": "nonprompt", "source": "mc", "query": ""},
]
FEATURES = ["fCpa", "fDecayLength", "fDeltaMassPhi", "fNSigTpcTofKa0"]


def class_frames(sizes, seed=0):
    """Separable toy classes with a unique candidate id."""
    rng = np.random.default_rng(seed)
    frames, start = {}, 0
    for shift, (name, n) in enumerate(sizes.items()):
        frame = pd.DataFrame(
            {f: rng.normal(shift * 0.7, 1, n).astype(np.float32) for f in FEATURES}
        )
        frame["fM"] = rng.uniform(1.7, 2.2, n).astype(np.float32)
        frame["fPt"] = rng.uniform(2, 4, n).astype(np.float32)
        frame["id"] = np.arange(start, start + n)
        start += n
        frames[name] = frame
    return frames


@pytest.fixture
def train_config(config):
    config = copy.deepcopy(config)
    config["pt_bins"] = [2, 4]
    config["classes"] = CLASSES
    config["features"] = FEATURES
    config["training"]["hyperparameters"] = {
        "xgboost": {"n_estimators": 30, "max_depth": 3},
        "lightgbm": {"n_estimators": 30, "num_leaves": 7},
    }
    config["evaluation"]["shap_candidates"] = 20
    config["evaluation"]["score_candidates"] = 1000
    return config


def write_inputs(tmp_path, sizes):
    inputs = {}
    for name, frame in class_frames(sizes).items():
        inputs[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(inputs[name], index=False)
    return inputs


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        ({"method": "none"}, {"bkg": 5000, "prompt": 400, "nonprompt": 900}),
        ({"method": "equalise"}, {"bkg": 400, "prompt": 400, "nonprompt": 400}),
        (
            {"method": "background_multiplier", "background_multiplier": 2.0},
            {"bkg": 2600, "prompt": 400, "nonprompt": 900},
        ),
        (
            {"method": "none", "caps": {"bkg": 1000, "nonprompt": 500}},
            {"bkg": 1000, "prompt": 400, "nonprompt": 500},
        ),
    ],
)
def test_balancing_gives_configured_class_sizes(balance, expected):
    sizes = {"bkg": 5000, "prompt": 400, "nonprompt": 900}
    split = build(class_frames(sizes), CLASSES, balance, 0.25, 10, 1, "pt2_4")
    counts = pd.concat([split.train, split.test])[LABEL].value_counts()
    assert {c["name"]: counts[k] for k, c in enumerate(CLASSES)} == expected
    for k, c in enumerate(CLASSES):
        assert (split.test[LABEL] == k).sum() == round(expected[c["name"]] * 0.25)


def test_background_multiplier_uses_all_mc_classes():
    sizes = target_sizes(
        {"bkg": 10**6, "prompt": 100, "nonprompt": 300},
        {"bkg": "data", "prompt": "mc", "nonprompt": "mc"},
        {"method": "background_multiplier", "background_multiplier": 3},
    )
    assert sizes == {"bkg": 1200, "prompt": 100, "nonprompt": 300}


def test_held_out_set_never_overlaps_training_set():
    sizes = {"bkg": 3000, "prompt": 500, "nonprompt": 700}
    split = build(class_frames(sizes), CLASSES, {"method": "none"}, 0.3, 10, 5, "b")
    assert not set(split.train["id"]) & set(split.test["id"])
    assert len(split.train) + len(split.test) == sum(sizes.values())


def test_same_seed_same_split_other_seed_other_split():
    sizes = {"bkg": 800, "prompt": 300, "nonprompt": 300}
    first = build(class_frames(sizes), CLASSES, {"method": "equalise"}, 0.3, 10, 5, "b")
    again = build(class_frames(sizes), CLASSES, {"method": "equalise"}, 0.3, 10, 5, "b")
    other = build(class_frames(sizes), CLASSES, {"method": "equalise"}, 0.3, 10, 6, "b")
    pd.testing.assert_frame_equal(first.test, again.test)
    assert not first.test["id"].equals(other.test["id"])


def test_too_few_candidates_names_class_and_bin():
    sizes = {"bkg": 3000, "prompt": 25, "nonprompt": 700}
    with pytest.raises(SampleError, match=r"pT bin pt8_12, class 'prompt': 25 cand"):
        build(class_frames(sizes), CLASSES, {"method": "none"}, 0.3, 10, 1, "pt8_12")


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_model_reloads_with_identical_predictions(tmp_path, library, n_classes):
    frames = class_frames({"bkg": 600, "prompt": 300, "nonprompt": 300})
    frame = pd.concat(list(frames.values())[:n_classes])
    labels = np.repeat(
        np.arange(n_classes), [len(f) for f in frames.values()][:n_classes]
    )
    x = frame[FEATURES].to_numpy(np.float32)
    model = Model(library, n_classes, {"n_estimators": 20}, seed=3, threads=2)
    model.fit(x, labels, names=FEATURES)
    path = tmp_path / MODEL_FILE[library]
    model.save(path)
    reloaded = load(path)
    assert reloaded.library == library and reloaded.n_classes == n_classes
    probabilities = model.predict_proba(x)
    assert probabilities.shape == (len(x), n_classes)
    assert probabilities.dtype == np.float32
    np.testing.assert_array_equal(reloaded.predict_proba(x), probabilities)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_contributions_equal_shap_tree_explainer(library):
    shap = pytest.importorskip("shap")
    frames = class_frames({"bkg": 400, "prompt": 200, "nonprompt": 200})
    x = pd.concat(frames.values())[FEATURES].to_numpy(np.float32)
    labels = np.repeat([0, 1, 2], [400, 200, 200])
    model = Model(library, 3, {"n_estimators": 10}, seed=1).fit(x, labels)
    ours = model.contributions(x[:50])[..., :-1]
    theirs = np.asarray(shap.TreeExplainer(model.booster).shap_values(x[:50]))
    np.testing.assert_allclose(np.moveaxis(ours, 1, -1), theirs, rtol=1e-5, atol=1e-6)


def test_unknown_hyperparameter_is_a_config_error(train_config, schema):
    from hfml.config import validate

    train_config["training"]["hyperparameters"]["xgboost"]["max_dept"] = 3
    with pytest.raises(ConfigError, match=r"'max_dept' is not a xgboost.*'max_depth'"):
        validate(train_config, schema)


def write_samples(tmp_path, config):
    """train.pq, test.pq and sample.json of bin pt2_4 in tmp_path."""
    inputs = write_inputs(tmp_path, {"bkg": 1500, "prompt": 400, "nonprompt": 400})
    make_samples(
        config,
        "pt2_4",
        inputs,
        tmp_path / "train.pq",
        tmp_path / "test.pq",
        tmp_path / "sample.json",
    )


def sha1(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_training_is_reproducible_and_evaluated(tmp_path, train_config, library):
    train_config["training"]["library"] = library
    inputs = write_inputs(tmp_path, {"bkg": 3000, "prompt": 600, "nonprompt": 800})
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        make_samples(
            train_config,
            "pt2_4",
            inputs,
            out / "train.pq",
            out / "test.pq",
            out / "sample.json",
        )
        model = out / MODEL_FILE[library]
        train(train_config, "pt2_4", out / "train.pq", model, out / "training.json")
        digests.append(sha1(model))
    assert digests[0] == digests[1]

    out = tmp_path / "a"
    metrics = evaluate(
        train_config,
        "pt2_4",
        out / MODEL_FILE[library],
        out / "train.pq",
        out / "test.pq",
        out / "training.json",
        out / "sample.json",
        out / "metrics.json",
        out / "plots",
    )
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        json.dumps(metrics)
    )
    assert metrics["candidates"]["prompt"] == {"train": 420, "test": 180}
    assert 0.5 < metrics["auc_test"]["ovr"]["bkg"] <= 1
    assert set(metrics["ks_pvalue"]) == {"bkg", "prompt", "nonprompt"}
    assert metrics["training_seconds"] > 0
    for name in EVALUATION_PLOTS:
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_tuning_resumes_and_reaches_training(tmp_path, train_config):
    train_config["optuna"].update(n_trials=3, folds=2, max_auc_gap=1.0, pruning=False)
    write_samples(tmp_path, train_config)
    journal = tmp_path / "optuna" / "study.journal"

    # An interrupted study: two of three trials done.
    study = tuning.open_study(train_config, "pt2_4", journal, tmp_path / "train.pq")
    objective = tuning.Objective(
        train_config, "pt2_4", pd.read_parquet(tmp_path / "train.pq")
    )
    study.optimize(objective, n_trials=2)

    report = tuning.run_worker(
        train_config,
        "pt2_4",
        tmp_path / "train.pq",
        journal,
        0,
        tmp_path / "worker0.json",
    )
    assert report == {"worker": 0, "trials_run": 1, "finished": 3}
    best = tuning.best_parameters(
        train_config,
        "pt2_4",
        tmp_path / "train.pq",
        journal,
        tmp_path / "best.json",
        tmp_path / "plots",
    )
    assert best["trials_finished"] == 3
    assert (tmp_path / "plots" / "optuna_history.png").exists()

    info = train(
        train_config,
        "pt2_4",
        tmp_path / "train.pq",
        tmp_path / "model.json",
        tmp_path / "training.json",
        tmp_path / "best.json",
    )
    for name, value in best["parameters"].items():
        assert info["hyperparameters"][name] == value
    assert info["cv"]["value"] == best["value"]


def test_overtrained_trials_are_rejected(tmp_path, train_config):
    train_config["optuna"].update(n_trials=2, folds=2, max_auc_gap=1e-9, pruning=False)
    write_samples(tmp_path, train_config)
    journal = tmp_path / "study.journal"
    tuning.run_worker(
        train_config, "pt2_4", tmp_path / "train.pq", journal, 0, tmp_path / "w.json"
    )
    with pytest.raises(Exception, match="no Optuna trial completed"):
        tuning.best_parameters(
            train_config,
            "pt2_4",
            tmp_path / "train.pq",
            journal,
            tmp_path / "best.json",
            tmp_path / "plots",
        )

"""The training stage per pT bin: samples, fit, evaluation.

Each function is one workflow job; they meet only through files: the
samples (parquet), the native model, and small JSON files.
"""

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from hfml import evaluation
from hfml.config import pt_bin_labels
from hfml.files import atomic_outputs, json_text, write_json
from hfml.models import Model, library_version, load
from hfml.samples import LABEL, bin_settings, build, weights

log = logging.getLogger(__name__)


def bin_edges(config: Mapping, ptbin: str) -> tuple[float, float]:
    edges = config["pt_bins"]
    index = pt_bin_labels(edges).index(ptbin)
    return edges[index], edges[index + 1]


def make_samples(
    config: Mapping,
    ptbin: str,
    inputs: Mapping[str, str],
    train_path: str,
    test_path: str,
    summary_path: str,
) -> dict:
    """Balanced, labelled, split training and test samples of one pT bin."""
    frames = {name: pd.read_parquet(path) for name, path in inputs.items()}
    training = config["training"]
    split = build(
        frames,
        config["classes"],
        bin_settings(config, ptbin)["balance"],
        training["test_fraction"],
        training["min_candidates"],
        training["seed"],
        ptbin,
    )
    summary = {
        "ptbin": ptbin,
        "test_fraction": training["test_fraction"],
        "classes": split.summary,
    }
    with atomic_outputs(train_path, test_path, summary_path) as (train, test, info):
        split.train.to_parquet(train, index=False)
        split.test.to_parquet(test, index=False)
        info.write_text(json_text(summary))
    return summary


def hyperparameters(config: Mapping, ptbin: str, best_path: str | None) -> dict:
    """The bin's hyper-parameters, with tuned values on top when given."""
    parameters = bin_settings(config, ptbin)["hyperparameters"]
    if best_path:
        best = json.loads(Path(best_path).read_text())
        parameters.update(best["parameters"])
        log.info("%s: tuned hyper-parameters %s", ptbin, best["parameters"])
    return parameters


def train(
    config: Mapping,
    ptbin: str,
    train_path: str,
    model_path: str,
    info_path: str,
    best_path: str | None = None,
    provenance: Mapping | None = None,
) -> dict:
    """Fit the model of one pT bin and save it with a JSON of how it was made.

    ``provenance`` (see :mod:`hfml.provenance`) is stored in both.
    """
    training = config["training"]
    features = bin_settings(config, ptbin)["features"]
    parameters = hyperparameters(config, ptbin, best_path)
    frame = pd.read_parquet(train_path)
    x = frame[features].to_numpy("float32")
    labels = frame[LABEL].to_numpy()
    model = Model(
        training["library"],
        len(config["classes"]),
        parameters,
        training["seed"],
        training["threads"],
    )
    start = time.perf_counter()
    model.fit(x, labels, weights(labels, training["class_weights"]), features)
    seconds = time.perf_counter() - start
    log.info("%s: trained on %d candidates in %.1f s", ptbin, len(frame), seconds)
    model.save(model_path, provenance)
    info = {
        "ptbin": ptbin,
        "library": training["library"],
        "versions": {training["library"]: library_version(training["library"])},
        "features": features,
        "classes": [c["name"] for c in config["classes"]],
        "hyperparameters": parameters,
        "training_candidates": len(frame),
        "training_seconds": seconds,
    }
    if best_path:
        info["cv"] = json.loads(Path(best_path).read_text())
    if provenance is not None:
        info["provenance"] = provenance
    write_json(info_path, info)
    return info


def evaluate(
    config: Mapping,
    ptbin: str,
    model_path: str,
    train_path: str,
    test_path: str,
    info_path: str,
    sample_path: str,
    metrics_path: str,
    plot_dir: str,
) -> dict:
    """Plots and metrics.json of one pT bin's model on its train and test sets."""
    info = json.loads(Path(info_path).read_text())
    samples = json.loads(Path(sample_path).read_text())
    result = evaluation.evaluate(
        load(model_path, config["training"]["threads"]),
        pd.read_parquet(train_path),
        pd.read_parquet(test_path),
        info["features"],
        info["classes"],
        bin_edges(config, ptbin),
        ptbin,
        config["evaluation"],
        plot_dir,
        config["training"]["seed"],
        config["training"]["threads"],
    )
    metrics = {
        "ptbin": ptbin,
        "candidates": {
            name: {"train": c["train"], "test": c["test"]}
            for name, c in samples["classes"].items()
        },
        "training_seconds": info["training_seconds"],
        **result,
    }
    if "cv" in info:
        metrics["auc_cv"] = info["cv"]["value"]
    write_json(metrics_path, metrics)
    test = metrics["auc_test"]
    log.info(
        "%s: test AUC one-vs-rest %s, one-vs-one mean %.4f; KS p-values %s",
        ptbin,
        {k: round(v, 4) for k, v in test["ovr"].items()},
        test["ovo_mean"],
        {k: f"{v:.2g}" for k, v in metrics["ks_pvalue"].items()},
    )
    return metrics

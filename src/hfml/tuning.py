"""Hyper-parameter optimisation with Optuna, per pT bin.

Each trial is scored by stratified k-fold cross-validation on the training
set (sample weights passed to every fold).  A trial whose mean train-minus-
validation AUC exceeds ``max_auc_gap`` is rejected as over-trained.  The study
lives in a journal file, so that an interrupted study resumes and several
jobs can add trials to it at once; the best parameters go to a JSON file that
the training job reads.
"""

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from hfml.errors import HfmlError
from hfml.files import write_json
from hfml.models import Model
from hfml.samples import LABEL, bin_settings, weights

log = logging.getLogger(__name__)


def storage(path: str | Path) -> optuna.storages.JournalStorage:
    """Journal storage in a file; safe for several processes at once."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


def suggest(trial: optuna.Trial, space: Mapping) -> dict:
    """Parameters of one trial from the configured search space."""
    parameters = {}
    for name, spec in space.items():
        if spec["type"] == "int":
            value = trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
        elif spec["type"] == "float":
            value = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec["log"]
            )
        else:
            value = trial.suggest_categorical(name, spec["choices"])
        parameters[name] = value
    return parameters


def score(labels: np.ndarray, probabilities: np.ndarray, metric: str) -> float:
    """ROC AUC, one-vs-one or one-vs-rest (macro) for several classes."""
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    return float(
        roc_auc_score(
            labels, probabilities, multi_class=metric.removeprefix("roc_auc_")
        )
    )


class Objective:
    """Cross-validated AUC of a parameter set, with pruning and an
    over-training guard."""

    def __init__(self, config: Mapping, ptbin: str, frame: pd.DataFrame) -> None:
        settings = bin_settings(config, ptbin)
        self.training = config["training"]
        self.optuna = config["optuna"]
        self.space = self.optuna["search_space"][self.training["library"]]
        self.base = settings["hyperparameters"]
        self.x = frame[settings["features"]].to_numpy(np.float32)
        self.labels = frame[LABEL].to_numpy()
        self.weights = weights(self.labels, self.training["class_weights"])
        self.n_classes = len(config["classes"])
        folds = StratifiedKFold(
            self.optuna["folds"], shuffle=True, random_state=self.training["seed"]
        )
        self.folds = list(folds.split(self.x, self.labels))

    def __call__(self, trial: optuna.Trial) -> float:
        parameters = {**self.base, **suggest(trial, self.space)}
        validation, gaps = [], []
        for fold, (train, valid) in enumerate(self.folds):
            model = Model(
                self.training["library"],
                self.n_classes,
                parameters,
                self.training["seed"],
                self.training["threads"],
            )
            weight = None if self.weights is None else self.weights[train]
            model.fit(self.x[train], self.labels[train], weight)
            metric = self.optuna["metric"]
            valid_auc = score(
                self.labels[valid], model.predict_proba(self.x[valid]), metric
            )
            train_auc = score(
                self.labels[train], model.predict_proba(self.x[train]), metric
            )
            validation.append(valid_auc)
            gaps.append(train_auc - valid_auc)
            trial.report(float(np.mean(validation)), fold)
            if self.optuna["pruning"] and trial.should_prune():
                raise optuna.TrialPruned()
        gap = float(np.mean(gaps))
        trial.set_user_attr("auc_gap", gap)
        trial.set_user_attr("auc_train", float(np.mean(validation) + gap))
        if gap > self.optuna["max_auc_gap"]:
            raise optuna.TrialPruned(
                f"over-trained: train - validation AUC = {gap:.4f} > "
                f"optuna.max_auc_gap = {self.optuna['max_auc_gap']}"
            )
        return float(np.mean(validation))


def study_name(config: Mapping, ptbin: str, train_path: str | Path) -> str:
    """Name of the bin's study: a new study whenever the training sample or
    anything that defines the search changes, the same one otherwise."""
    definition = {
        "optuna": {k: v for k, v in config["optuna"].items() if k != "workers"},
        "training": config["training"],
        "settings": bin_settings(config, ptbin),
        "sample": hashlib.sha1(Path(train_path).read_bytes()).hexdigest(),
    }
    digest = hashlib.sha1(json.dumps(definition, sort_keys=True).encode())
    return f"hfml-{ptbin}-{digest.hexdigest()[:12]}"


def open_study(
    config: Mapping,
    ptbin: str,
    journal: str | Path,
    train_path: str | Path,
    stream: int = 0,
) -> optuna.Study:
    """The bin's stored study; ``stream`` seeds the sampler, so that workers and
    resumed runs do not propose the same parameters again."""
    return optuna.create_study(
        study_name=study_name(config, ptbin, train_path),
        storage=storage(journal),
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config["training"]["seed"] + stream),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )


def finished(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(
    config: Mapping,
    ptbin: str,
    train_path: str,
    journal: str | Path,
    worker: int,
    report_path: str,
) -> dict:
    """Add this worker's share of the trials to the bin's stored study.

    Trials already finished (by an earlier, interrupted run or by other
    workers) count: the study stops at ``optuna.n_trials`` finished trials.
    """
    settings = config["optuna"]
    study = open_study(config, ptbin, journal, train_path)
    study = open_study(
        config, ptbin, journal, train_path, 1000 * (worker + 1) + finished(study)
    )
    share = -(-settings["n_trials"] // settings["workers"])
    remaining = max(settings["n_trials"] - finished(study), 0)
    todo = min(share, remaining)
    log.info(
        "%s: study has %d finished trials; worker %d runs %d more",
        ptbin,
        finished(study),
        worker,
        todo,
    )
    if todo:
        objective = Objective(config, ptbin, pd.read_parquet(train_path))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            objective,
            n_trials=todo,
            timeout=settings["timeout"],
            catch=(),
        )
    report = {"worker": worker, "trials_run": todo, "finished": finished(study)}
    write_json(report_path, report)
    return report


def best_parameters(
    config: Mapping,
    ptbin: str,
    train_path: str,
    journal: str | Path,
    best_path: str,
    plot_dir: str,
) -> dict:
    """Write the best trial's parameters and Optuna's plots of the study."""
    study = open_study(config, ptbin, journal, train_path)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise HfmlError(
            f"pT bin {ptbin}: no Optuna trial completed (all pruned or rejected as "
            f"over-trained; optuna.max_auc_gap = {config['optuna']['max_auc_gap']})"
        )
    best = study.best_trial
    result = {
        "ptbin": ptbin,
        "parameters": best.params,
        "metric": config["optuna"]["metric"],
        "value": best.value,
        "auc_gap": best.user_attrs.get("auc_gap"),
        "trial": best.number,
        "trials_complete": len(complete),
        "trials_finished": finished(study),
    }
    write_json(best_path, result)
    log.info(
        "%s: best trial %d, CV AUC %.4f: %s",
        ptbin,
        best.number,
        best.value,
        best.params,
    )
    plot_study(study, Path(plot_dir), ptbin)
    return result


def plot_study(study: optuna.Study, plot_dir: Path, ptbin: str) -> None:
    """Optuna's optimisation history and parameter importances, as PNG."""
    import warnings

    from optuna.visualization import matplotlib as optuna_plots

    from hfml import plotting

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        history = optuna_plots.plot_optimization_history(study).figure
        plotting.save(history, plot_dir / "optuna_history.png", f"Optuna, {ptbin}")
        if len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) > 1:
            importance = optuna_plots.plot_param_importances(study).figure
        else:
            importance, ax = plotting.plt.subplots()
            ax.text(0.5, 0.5, "one completed trial: no importances", ha="center")
        plotting.save(
            importance, plot_dir / "optuna_importance.png", f"Optuna, {ptbin}"
        )

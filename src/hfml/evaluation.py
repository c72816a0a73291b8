"""Evaluation of a trained model per pT bin: metrics and plots.

ROC AUCs are computed one-vs-rest per class and one-vs-one per pair of
classes (the score of the first class of the pair, on the candidates of the
two).  The over-training check compares, per output class, the score
distributions of the training and test sets with a two-sample
Kolmogorov-Smirnov test.
"""

import contextlib
import itertools
import logging
import multiprocessing
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from hfml import plotting
from hfml.samples import LABEL

log = logging.getLogger(__name__)


def auc_summary(labels: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict:
    """ROC AUC one-vs-rest per class, one-vs-one per pair, and their means."""
    ovr = {
        name: float(skm.roc_auc_score(labels == k, scores[:, k]))
        for k, name in enumerate(names)
    }
    ovo = {}
    for i, j in itertools.combinations(range(len(names)), 2):
        pair = (labels == i) | (labels == j)
        ovo[f"{names[i]}_vs_{names[j]}"] = float(
            skm.roc_auc_score(labels[pair] == i, scores[pair, i])
        )
    return {
        "ovr": ovr,
        "ovo": ovo,
        "ovr_mean": float(np.mean(list(ovr.values()))),
        "ovo_mean": float(np.mean(list(ovo.values()))),
    }


def ks_pvalues(
    train: np.ndarray, test: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """Kolmogorov-Smirnov p-value of train vs test scores, per output class."""
    return {
        name: float(stats.ks_2samp(train[:, k], test[:, k]).pvalue)
        for k, name in enumerate(names)
    }


def mass_correlations(
    frame: pd.DataFrame, features: Sequence[str], threshold: float, ptbin: str
) -> dict[str, float]:
    """Pearson correlation of every feature with the invariant mass, per class;
    logs a warning for each above the threshold (a BDT could sculpt the mass)."""
    result = {}
    for label, group in frame.groupby(LABEL):
        correlation = group[[*features, "fM"]].corr()["fM"].drop("fM")
        for feature, value in correlation.items():
            if abs(value) > threshold:
                log.warning(
                    "%s: feature %s correlates with the invariant mass "
                    "(r = %.2f, class %d), above %.2f",
                    ptbin,
                    feature,
                    value,
                    label,
                    threshold,
                )
        result[str(label)] = {k: float(v) for k, v in correlation.items()}
    return result


def balanced_subsample(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = [
        group.iloc[rng.permutation(len(group))[:per_class]]
        for _, group in frame.groupby(LABEL)
    ]
    return pd.concat(parts)


def shap_importance(model, features: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean |SHAP value| per class and feature, [n_classes, F].

    The values are the libraries' own TreeSHAP contributions (path-dependent
    algorithm of Lundberg et al.), identical to ``shap.TreeExplainer``'s; a
    binary model has one output, shown for both classes.
    """
    contributions = model.contributions(features)
    mean = np.abs(contributions[..., :-1]).mean(axis=0)
    return (
        np.broadcast_to(mean, (n_classes, mean.shape[-1])) if mean.ndim == 1 else mean
    )


def evaluate(
    model,
    train: pd.DataFrame,
    test: pd.DataFrame,
    features: Sequence[str],
    classes: Sequence[str],
    edges: tuple[float, float],
    ptbin: str,
    settings: Mapping,
    plot_dir: str | Path,
    seed: int = 0,
    workers: int = 1,
) -> dict:
    """Metrics of a trained model, with the plots of ``EVALUATION_PLOTS`` in plot_dir.

    The figures are drawn by ``workers`` processes; those of the samples alone
    while the model is evaluated.
    """
    plot_dir = Path(plot_dir)
    title = plotting.pt_title(*edges)
    with plot_pool(workers) as pool:
        drawn = [
            pool.submit(
                plot_features,
                test[[*features, "fM", LABEL]],
                features,
                classes,
                settings["log_scale"],
                plot_dir,
                title,
            ),
            pool.submit(
                plot_correlations,
                test[[*features, "fM", "fPt", LABEL]],
                features,
                classes,
                plot_dir,
                title,
            ),
        ]
        result, scores, shap_values = _metrics(
            model, train, test, features, classes, ptbin, settings, seed
        )
        p_train, y_train, p_test, y_test = scores
        gain = result["importance"]["gain"]
        drawn += [
            pool.submit(
                plot_scores,
                p_train,
                y_train,
                p_test,
                y_test,
                classes,
                result,
                plot_dir,
                title,
            ),
            pool.submit(
                plot_roc, p_train, y_train, p_test, y_test, classes, plot_dir, title
            ),
            pool.submit(
                plot_precision_recall, p_test, y_test, classes, plot_dir, title
            ),
            pool.submit(plot_efficiency, p_test, y_test, classes, plot_dir, title),
            pool.submit(
                plot_importance, gain, shap_values, features, classes, plot_dir, title
            ),
        ]
        for future in drawn:
            future.result()
    return result


def _metrics(model, train, test, features, classes, ptbin, settings, seed):
    """AUCs, KS p-values, mass correlations and importances; the scores and the
    mean |SHAP| values behind them."""
    # Train scores serve only the comparison with the test set: a random
    # subsample describes them as well as all would.
    rng = np.random.default_rng(seed)
    keep = min(len(train), len(test), settings["score_candidates"])
    train = train.iloc[np.sort(rng.permutation(len(train))[:keep])]
    y_train = train[LABEL].to_numpy()
    y_test = test[LABEL].to_numpy()
    p_train = model.predict_proba(train[list(features)].to_numpy(np.float32))
    p_test = model.predict_proba(test[list(features)].to_numpy(np.float32))

    result = {
        "auc_train": auc_summary(y_train, p_train, classes),
        "auc_test": auc_summary(y_test, p_test, classes),
        "ks_pvalue": ks_pvalues(p_train, p_test, classes),
        "mass_correlation": mass_correlations(
            test, features, settings["mass_correlation_threshold"], ptbin
        ),
    }
    for name, p in result["ks_pvalue"].items():
        if p < 0.01:
            log.warning(
                "%s: scores of class %s differ between train and test "
                "(KS p = %.2g): over-training?",
                ptbin,
                name,
                p,
            )
    subsample = balanced_subsample(test, settings["shap_candidates"], seed)
    shap_values = shap_importance(
        model, subsample[list(features)].to_numpy(np.float32), len(classes)
    )
    result["importance"] = {
        "gain": model.gain_importance(features),
        "shap_mean_abs": {
            name: dict(zip(features, map(float, shap_values[k]), strict=True))
            for k, name in enumerate(classes)
        },
    }
    return result, (p_train, y_train, p_test, y_test), shap_values


class _Inline:
    """An executor that runs each task when it is submitted."""

    def submit(self, function, *arguments) -> Future:
        future: Future = Future()
        future.set_result(function(*arguments))
        return future


@contextlib.contextmanager
def plot_pool(workers: int) -> Iterator:
    """Processes that draw figures.  Drawing is CPU-bound Python, so threads
    would not help; the children only draw, hence forking is safe."""
    if workers <= 1:
        yield _Inline()
        return
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This process .* is multi-threaded")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            yield pool


def _edges_of(values: np.ndarray, bins: int = 50) -> np.ndarray:
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, [0.5, 99.5]) if len(finite) else (0, 1)
    if high <= low:
        high = low + 1
    return np.linspace(low, high, bins + 1)


def plot_features(frame, features, classes, log_scale, plot_dir, title) -> None:
    names = [*features, "fM"]
    fig, axes = plotting.grid(len(names))
    for ax, feature in zip(axes, names, strict=True):
        values = frame[feature].to_numpy()
        edges = _edges_of(values[values != -999.0])
        for k, name in enumerate(classes):
            selected = values[frame[LABEL].to_numpy() == k]
            counts, _ = np.histogram(selected, edges, density=True)
            ax.stairs(counts, edges, label=name, color=plotting.COLOURS[k])
        ax.set_xlabel(plotting.axis_label(feature))
        if log_scale:
            ax.set_yscale("log")
    fig.supylabel("density (normalised to unit area)")
    plotting.legend(axes[0])
    plotting.save(fig, plot_dir / "features.png", f"Feature distributions, {title}")


def plot_correlations(frame, features, classes, plot_dir, title) -> None:
    names = [*features, "fM", "fPt"]
    fig, axes = plotting.grid(len(classes), columns=len(classes), size=6.5)
    for k, (ax, name) in enumerate(zip(axes, classes, strict=True)):
        matrix = frame.loc[frame[LABEL] == k, names].corr().to_numpy()
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(name)
    fig.colorbar(image, ax=axes, shrink=0.7, label="correlation")
    plotting.save(fig, plot_dir / "correlations.png", f"Correlations, {title}")


def plot_scores(p_train, y_train, p_test, y_test, classes, result, plot_dir, title):
    edges = np.linspace(0, 1, 41)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, axes = plotting.grid(len(classes), columns=len(classes), size=5)
    for k, ax in enumerate(axes):
        for c, name in enumerate(classes):
            colour = plotting.COLOURS[c]
            train, _ = np.histogram(p_train[y_train == c, k], edges, density=True)
            test, _ = np.histogram(p_test[y_test == c, k], edges, density=True)
            ax.stairs(
                train, edges, fill=True, alpha=0.3, color=colour, label=f"{name} train"
            )
            ax.plot(
                centres, test, "o", markersize=3, color=colour, label=f"{name} test"
            )
        ax.set_yscale("log")
        ax.set_xlabel(f"{classes[k]} score")
        ax.set_ylabel("density")
        ax.set_title(f"KS p = {result['ks_pvalue'][classes[k]]:.2g}", fontsize="small")
    plotting.legend(axes[0])
    plotting.save(fig, plot_dir / "scores.png", f"Scores, train vs test, {title}")


def _roc(ax, truth, score, style, colour, label) -> None:
    fpr, tpr, _ = skm.roc_curve(truth, score)
    ax.plot(
        fpr, tpr, style, color=colour, label=f"{label} (AUC {skm.auc(fpr, tpr):.3f})"
    )


def plot_roc(p_train, y_train, p_test, y_test, classes, plot_dir, title) -> None:
    pairs = list(itertools.combinations(range(len(classes)), 2))
    fig, axes = plotting.grid(2, columns=2, size=5.5)
    for sample, probabilities, labels, style in (
        ("train", p_train, y_train, "--"),
        ("test", p_test, y_test, "-"),
    ):
        for k, name in enumerate(classes):
            label = f"{name} vs rest, {sample}"
            colour = plotting.COLOURS[k]
            _roc(axes[0], labels == k, probabilities[:, k], style, colour, label)
        for n, (i, j) in enumerate(pairs):
            pair = (labels == i) | (labels == j)
            label = f"{classes[i]} vs {classes[j]}, {sample}"
            truth, score = labels[pair] == i, probabilities[pair, i]
            _roc(axes[1], truth, score, style, plotting.COLOURS[n], label)
    for ax, kind in zip(axes, ("one vs rest", "one vs one"), strict=True):
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(kind, fontsize="small")
        plotting.legend(ax, loc="lower right")
    plotting.save(fig, plot_dir / "roc.png", f"ROC curves, {title}")


def plot_precision_recall(p_test, y_test, classes, plot_dir, title) -> None:
    fig, axes = plotting.grid(1, columns=1, size=5.5)
    for k, name in enumerate(classes):
        precision, recall, _ = skm.precision_recall_curve(y_test == k, p_test[:, k])
        ap = skm.average_precision_score(y_test == k, p_test[:, k])
        axes[0].plot(
            recall, precision, color=plotting.COLOURS[k], label=f"{name} (AP {ap:.3f})"
        )
    axes[0].set_xlabel("recall")
    axes[0].set_ylabel("precision")
    plotting.legend(axes[0], loc="lower left")
    plotting.save(
        fig, plot_dir / "precision_recall.png", f"Precision-recall, test set, {title}"
    )


def plot_efficiency(p_test, y_test, classes, plot_dir, title) -> None:
    """Per output class: efficiency of every true class for score > threshold."""
    thresholds = np.linspace(0, 1, 201)
    fig, axes = plotting.grid(len(classes), columns=len(classes), size=5)
    for k, ax in enumerate(axes):
        for c, name in enumerate(classes):
            scores = np.sort(p_test[y_test == c, k])
            passing = 1 - np.searchsorted(scores, thresholds, side="right") / max(
                len(scores), 1
            )
            if c == 0 and k != 0:
                ax.plot(
                    thresholds,
                    1 - passing,
                    "--",
                    color=plotting.COLOURS[c],
                    label=f"{name} rejection",
                )
            ax.plot(
                thresholds,
                passing,
                color=plotting.COLOURS[c],
                label=f"{name} efficiency",
            )
        ax.set_xlabel(f"{classes[k]} score threshold")
        ax.set_ylabel("fraction with score > threshold")
        ax.set_yscale("log")
    plotting.legend(axes[0])
    plotting.save(
        fig, plot_dir / "efficiency.png", f"Efficiency and rejection, test set, {title}"
    )


def plot_importance(gain, shap_values, features, classes, plot_dir, title) -> None:
    fig, axes = plotting.grid(2, columns=2, size=5, left=2.0)
    order = np.argsort([gain[f] for f in features])
    names = [features[i] for i in order]
    axes[0].barh(names, [gain[f] for f in names], color=plotting.COLOURS[0])
    axes[0].set_xlabel("fraction of total gain")
    left = np.zeros(len(features))
    for k, name in enumerate(classes):
        values = shap_values[k][order]
        axes[1].barh(names, values, left=left, color=plotting.COLOURS[k], label=name)
        left += values
    axes[1].set_xlabel("mean |SHAP value|")
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
    plotting.legend(axes[1], loc="lower right")
    plotting.save(fig, plot_dir / "importance.png", f"Feature importance, {title}")

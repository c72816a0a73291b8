"""Training samples per pT bin: class labels, balancing and a stratified split.

Labels follow the order of the classes in the configuration, which is the
order of the model outputs.  Balancing and splitting are seeded, so the same
inputs and configuration give the same samples.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hfml.errors import HfmlError

log = logging.getLogger(__name__)

LABEL = "label"
"""Column holding the class index (position in the configuration)."""


class SampleError(HfmlError):
    """A pT bin cannot give a training sample (too few candidates)."""


def bin_settings(config: Mapping, ptbin: str) -> dict:
    """Balancing, hyper-parameters and features of one pT bin, overrides applied."""
    training = config["training"]
    override = training["per_bin"].get(ptbin, {})
    library = training["library"]
    return {
        "balance": {**training["balance"], **override.get("balance", {})},
        "hyperparameters": {
            **training["hyperparameters"][library],
            **override.get("hyperparameters", {}),
        },
        "features": list(override.get("features", config["features"])),
    }


def target_sizes(
    available: Mapping[str, int], sources: Mapping[str, str], balance: Mapping
) -> dict[str, int]:
    """How many candidates of each class the balanced sample keeps.

    ``none`` keeps everything, ``equalise`` brings every class down to the
    smallest one, ``background_multiplier`` brings every data class down to
    the factor times all MC-class candidates; per-class caps apply last.
    """
    sizes = dict(available)
    method = balance.get("method", "none")
    if method == "equalise":
        smallest = min(sizes.values())
        sizes = dict.fromkeys(sizes, smallest)
    elif method == "background_multiplier":
        signal = sum(n for name, n in sizes.items() if sources[name] == "mc")
        limit = round(balance["background_multiplier"] * signal)
        sizes = {
            name: min(n, limit) if sources[name] == "data" else n
            for name, n in sizes.items()
        }
    for name, cap in balance.get("caps", {}).items():
        sizes[name] = min(sizes[name], cap)
    return sizes


@dataclass
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    summary: dict
    """Per class: available, used, train and test counts."""


def build(
    frames: Mapping[str, pd.DataFrame],
    classes: Sequence[Mapping],
    balance: Mapping,
    test_fraction: float,
    min_candidates: int,
    seed: int,
    ptbin: str,
) -> Split:
    """Label, balance, shuffle and split the candidates of one pT bin.

    ``frames`` maps class name to its candidates.  Every class is split with
    the same test fraction (stratified); the rows of each set are shuffled.
    """
    rng = np.random.default_rng(seed)
    available = {c["name"]: len(frames[c["name"]]) for c in classes}
    sources = {c["name"]: c["source"] for c in classes}
    sizes = target_sizes(available, sources, balance)
    trains, tests, summary = [], [], {}
    for label, cls in enumerate(classes):
        name = cls["name"]
        n_test = round(sizes[name] * test_fraction)
        n_train = sizes[name] - n_test
        if min(n_test, n_train) < min_candidates:
            raise SampleError(
                f"pT bin {ptbin}, class {name!r}: {available[name]} candidates "
                f"({sizes[name]} after balancing) give {n_train} for training and "
                f"{n_test} for testing with training.test_fraction = "
                f"{test_fraction}; at least training.min_candidates = "
                f"{min_candidates} are needed in each"
            )
        chosen = rng.permutation(available[name])[: sizes[name]]
        frame = frames[name].iloc[chosen].reset_index(drop=True)
        frame.insert(len(frame.columns), LABEL, np.int8(label))
        tests.append(frame.iloc[:n_test])
        trains.append(frame.iloc[n_test:])
        summary[name] = {
            "label": label,
            "available": available[name],
            "used": sizes[name],
            "train": n_train,
            "test": n_test,
        }
        log.info(
            "%s, class %s: %d candidates available, %d used (%d train, %d test)",
            ptbin,
            name,
            available[name],
            sizes[name],
            n_train,
            n_test,
        )
    return Split(_shuffle(trains, rng), _shuffle(tests, rng), summary)


def _shuffle(frames: list[pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def weights(labels: np.ndarray, scheme: str) -> np.ndarray | None:
    """Per-candidate weights: None, or ``balanced`` (every class sums to N / k)."""
    if scheme == "none":
        return None
    counts = np.bincount(labels)
    per_class = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return per_class[labels].astype(np.float32)

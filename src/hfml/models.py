"""One interface over XGBoost and LightGBM classifiers.

Models are saved in each library's portable format (XGBoost JSON, LightGBM
text), never pickled.  Features are float32 from the trees to the model, so
that the ONNX export, which compares in float32, can be exact.
"""

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hfml.errors import ConfigError, nearest
from hfml.files import atomic_outputs
from hfml.provenance import KEY as PROVENANCE_KEY

LIBRARIES = ("xgboost", "lightgbm")
MODEL_FILE = {"xgboost": "model.json", "lightgbm": "model.txt"}


def _wrapper(library: str):
    if library == "xgboost":
        import xgboost

        return xgboost.XGBClassifier
    import lightgbm

    return lightgbm.LGBMClassifier


def library_version(library: str) -> str:
    return importlib.import_module(library).__version__


def check_hyperparameters(library: str, parameters: Mapping, key: str) -> None:
    """Unknown hyper-parameter names are configuration errors, not warnings."""
    known = set(_wrapper(library)().get_params())
    for name in parameters:
        if name not in known:
            raise ConfigError(
                f"config key '{key}': {name!r} is not a {library} hyper-parameter"
                f"{nearest(name, known)}"
            )


class Model:
    """A multi-class (softmax) or binary (logistic) gradient-boosted classifier."""

    def __init__(
        self,
        library: str,
        n_classes: int,
        parameters: Mapping | None = None,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        if library not in LIBRARIES:
            raise ConfigError(f"training.library must be one of {LIBRARIES}")
        self.library = library
        self.n_classes = n_classes
        settings = dict(parameters or {})
        settings.update(random_state=seed, n_jobs=threads)
        if library == "xgboost":
            objective = "multi:softprob" if n_classes > 2 else "binary:logistic"
            settings.setdefault("tree_method", "hist")
        else:
            objective = "multiclass" if n_classes > 2 else "binary"
            settings.update(deterministic=True, force_row_wise=True, verbose=-1)
        settings["objective"] = objective
        self.threads = threads
        self.estimator = _wrapper(library)(**settings)
        self._booster = None

    def fit(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray | None = None,
        names: Sequence[str] | None = None,
    ) -> "Model":
        x = np.ascontiguousarray(features, dtype=np.float32)
        if self.library == "lightgbm" and names is not None:
            import pandas as pd

            x = pd.DataFrame(x, columns=list(names))
        self.estimator.fit(x, labels, sample_weight=weights)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities [N, n_classes], float32."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if self.library == "xgboost":
            probabilities = self.estimator.predict_proba(x)
        else:
            raw = self.booster.predict(x, num_threads=self.threads)
            probabilities = raw if raw.ndim == 2 else np.stack([1 - raw, raw], axis=1)
        return probabilities.astype(np.float32)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions in raw-score units, [N, n_outputs, F + 1] for
        multi-class models and [N, F + 1] for binary ones (last column: bias)."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if self.library == "xgboost":
            import xgboost

            return self.booster.predict(xgboost.DMatrix(x), pred_contribs=True)
        values = self.booster.predict(x, pred_contrib=True, num_threads=self.threads)
        if self.n_classes > 2:
            values = values.reshape(len(x), self.n_classes, -1)
        return values

    @property
    def booster(self):
        """The library's own model object (xgboost.Booster, lightgbm.Booster)."""
        if self.library == "xgboost":
            return self.estimator.get_booster()
        return self._booster if self._booster is not None else self.estimator.booster_

    def gain_importance(self, names: Sequence[str]) -> dict[str, float]:
        """Total gain per feature, normalised to one."""
        if self.library == "xgboost":
            scores = self.booster.get_score(importance_type="total_gain")
            values = np.array([scores.get(f"f{i}", 0.0) for i in range(len(names))])
        else:
            values = self.booster.feature_importance(importance_type="gain")
        total = values.sum() or 1.0
        return {name: float(v / total) for name, v in zip(names, values, strict=True)}

    def save(self, path: str | Path, provenance: Mapping | None = None) -> None:
        """Save in the library's format, with ``provenance`` stored inside.

        XGBoost keeps it as a booster attribute; LightGBM as one more line of
        the model's parameter block, which LightGBM reads back and keeps.
        """
        record = None if provenance is None else json.dumps(provenance, sort_keys=True)
        with atomic_outputs(path) as (temporary,):
            if self.library == "xgboost":
                self.booster.set_attr(**{PROVENANCE_KEY: record})
                temporary.write_bytes(bytes(self.booster.save_raw(raw_format="json")))
            else:
                temporary.write_text(_with_parameter(self.booster, record))


def _with_parameter(booster, record: str | None) -> str:
    text = booster.model_to_string()
    end = "\nend of parameters\n"
    if record is None:
        return text
    if end not in text:
        raise RuntimeError("the LightGBM model text has no parameter block")
    return text.replace(end, f"\n[{PROVENANCE_KEY}: {record}]{end}", 1)


def load(path: str | Path, threads: int = 1) -> "Model":
    """Load a model saved by :meth:`Model.save`; the suffix tells the library."""
    path = Path(path)
    if path.suffix == ".json":
        model = Model("xgboost", 2, threads=threads)
        model.estimator.load_model(path)
        model.booster.set_param({"nthread": threads})
        model.n_classes = max(model.estimator.n_classes_, 2)
        return model
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    n_classes = max(booster.num_model_per_iteration(), 2)
    model = Model("lightgbm", n_classes, threads=threads)
    model._booster = booster
    return model

"""How separable the toy sample is: BDT ROC AUC per pT bin.

Trains a small gradient-boosted classifier per pT bin on the toy sample of a
configuration (default: config/config.yaml) after its preselection: prompt and
non-prompt Ds+ (MC) against data side bands, and prompt against non-prompt.
Needs xgboost and scikit-learn (``pip install xgboost scikit-learn``).

    python benchmarks/toy_separation.py [config.yaml ...]
"""

import itertools
import sys

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from hfml.cli import load_configs
from hfml.config import repository_root
from hfml.toy import generate_file


def frame(source: str, toy: dict, files: int) -> pd.DataFrame:
    parts = []
    for index in range(files):
        content = generate_file(source, index, toy)
        parts += [pd.DataFrame(f) for f in content.frames.values()]
    return pd.concat(parts, ignore_index=True)


def auc(first: pd.DataFrame, second: pd.DataFrame, features: list[str]) -> float:
    x = pd.concat([first[features], second[features]])
    y = np.r_[np.ones(len(first)), np.zeros(len(second))]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=1, stratify=y
    )
    model = xgboost.XGBClassifier(n_estimators=200, max_depth=4, n_jobs=2)
    model.fit(x_train, y_train)
    return roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])


def main(paths: list[str]) -> None:
    config = load_configs(paths or [str(repository_root() / "config/config.yaml")])
    toy = config["inputs"]["toy"]
    data = frame("data", toy, min(2, toy["data"]["files"]))
    mc = frame("mc", toy, 1)
    classes = {c["name"]: c for c in config["classes"]}
    presel = config["preselection"] or "fPt == fPt"
    background = data.query(presel).query(classes["bkg"]["query"])
    prompt = mc.query(presel).query(classes["prompt"]["query"])
    nonprompt = mc.query(presel).query(classes["nonprompt"]["query"])
    features = config["features"]
    edges = config["pt_bins"]
    print("pT bin    prompt/bkg  nonprompt/bkg  prompt/nonprompt  (candidates)")
    for low, high in itertools.pairwise(edges):
        cut = f"fPt >= {low} and fPt < {high}"
        b, p, n = (s.query(cut) for s in (background, prompt, nonprompt))
        print(
            f"{low:g}-{high:g} GeV/c  {auc(p, b, features):.3f}       "
            f"{auc(n, b, features):.3f}          {auc(p, n, features):.3f}"
            f"             ({len(b)}, {len(p)}, {len(n)})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

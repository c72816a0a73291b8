"""Scoring speed of hfml's MlResponse against ONNX Runtime, same model, same rows.

The model is the reference of the apply-stage target: XGBoost, 500 rounds x 3
classes (1500 trees) of depth 5 on 8 float32 features, exported by hfml.
Rates are rows per second on one core, measured in this run; the scores of
every method are checked bit for bit against ONNX Runtime one row at a time.

    python benchmarks/scoring_speed.py [--rows 20000]
"""

import argparse
import time

import numpy as np
import onnxruntime

from hfml.export import export
from hfml.inference import MlResponse
from hfml.models import Model

FEATURES = [
    "fCpa",
    "fCpaXY",
    "fDecayLength",
    "fDecayLengthXYNormalised",
    "fImpactParameterXY",
    "fMaxNormalisedDeltaIP",
    "fDeltaMassPhi",
    "fAbsCos3PiK",
]


def reference_model(seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30000, len(FEATURES))).astype(np.float32)
    labels = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=len(x)) > 0).astype(int)
    labels += x[:, 2] + rng.normal(size=len(x)) > 1.2
    parameters = {"n_estimators": 500, "max_depth": 5, "learning_rate": 0.05}
    model = Model("xgboost", 3, parameters, seed=seed, threads=2).fit(x, labels)
    return export(model, FEATURES, ["bkg", "prompt", "nonprompt"], (2, 4), {})


def session(proto):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def rate(function, rows: int, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return rows / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    proto = reference_model()
    x = np.random.default_rng(7).normal(size=(args.rows, len(FEATURES)))
    x = x.astype(np.float32)
    ort = session(proto)
    name = ort.get_inputs()[0].name
    single = x[: min(2000, args.rows)]

    def one_by_one():
        return np.vstack([ort.run(None, {name: row[None]})[-1] for row in single])

    def batched():
        return ort.run(None, {name: x})[-1]

    response = MlResponse([proto], [2, 4], [[0.5, 0, 0]], [0, 1, 1], 3, len(FEATURES))
    pt = np.full(len(x), 3.0)

    def hfml():
        return response.scores(x, pt)

    reference = one_by_one()
    assert np.array_equal(batched()[: len(single)], reference)
    assert np.array_equal(hfml()[: len(single)], reference)
    rates = {
        "ONNX Runtime, one candidate per call": rate(one_by_one, len(single)),
        "ONNX Runtime, batched, 1 thread": rate(batched, len(x)),
        "hfml MlResponse": rate(hfml, len(x)),
    }
    base = rates["ONNX Runtime, batched, 1 thread"]
    single_rate = rates["ONNX Runtime, one candidate per call"]
    for label, value in rates.items():
        print(
            f"{label:40s} {value:10.0f} rows/s   {value / single_rate:5.2f}x one "
            f"per call   {value / base:5.2f}x batched"
        )
    print("scores bit-identical to ONNX Runtime one row at a time: yes")


if __name__ == "__main__":
    main()

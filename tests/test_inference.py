"""ONNX export and application with O2Physics' MlResponse semantics."""

import json

import numpy as np
import onnx
import pytest

from hfml.errors import ConfigError, InputError
from hfml.export import (
    ValidationError,
    convert,
    export,
    floor_to_float32,
    o2_names,
    o2physics_config,
    validate,
)
from hfml.inference import (
    CUT_GREATER,
    CUT_NOT,
    CUT_SMALLER,
    MlResponse,
    OnnxScorer,
    bin_index,
    passes,
)
from hfml.models import Model

FEATURES = ["fCpa", "fDecayLength", "fDeltaMassPhi", "fImpactParameter0"]


def trained(library, n_classes, seed=0, n=3000):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int)
    if n_classes == 3:
        labels += x[:, 1] > 0.8
    model = Model(library, n_classes, {"n_estimators": 40}, seed=1, threads=1)
    return model.fit(x, labels, names=FEATURES), x


def one_by_one(proto, x):
    """ONNX Runtime with one thread, one candidate per call, as on Hyperloop."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options)
    name = session.get_inputs()[0].name
    return np.vstack(
        [session.run(None, {name: x[i : i + 1]})[-1] for i in range(len(x))]
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.999999, -1), (2.0, 0), (4.0, 1), (11.9999, 2), (12.0, -1), (50.0, -1)],
)
def test_bins_are_closed_below_open_above(value, expected):
    assert bin_index(np.array([value]), [2, 4, 8, 12])[0] == expected


@pytest.mark.parametrize(
    ("score", "direction", "cut", "kept"),
    [
        (0.3, CUT_GREATER, 0.2, False),
        (0.2, CUT_GREATER, 0.2, True),
        (0.1, CUT_GREATER, 0.2, True),
        (0.1, CUT_SMALLER, 0.2, False),
        (0.2, CUT_SMALLER, 0.2, True),
        (0.9, CUT_SMALLER, 0.2, True),
        (0.9, CUT_NOT, 0.2, True),
        (0.0, CUT_NOT, 0.2, True),
    ],
)
def test_each_cut_direction_and_equality(score, direction, cut, kept):
    scores = np.array([[score]], np.float32)
    if score == cut:
        scores = np.array([[cut]], np.float64).astype(np.float32)
        cut = float(scores[0, 0])
    assert passes(scores, [cut], [direction])[0] == kept


def test_float32_score_is_promoted_to_double_before_comparing():
    # C++: 0.1f > 0.1 is true (0.1f = 0.100000001...); numpy 2 would say False
    # if it compared in float32.
    score = np.array([[0.1]], np.float32)
    assert not passes(score, [0.1], [CUT_GREATER])[0]
    assert passes(score, [0.1], [CUT_SMALLER])[0]


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_batched_scores_are_bit_identical_to_one_by_one(library, n_classes):
    model, x = trained(library, n_classes)
    x[::17, 2] = np.nan
    proto = export(model, FEATURES, ["a", "b", "c"][:n_classes], (2, 4), {})
    scorer = OnnxScorer(proto, len(FEATURES))
    assert scorer.ensemble is not None
    np.testing.assert_array_equal(scorer(x[:1000]), one_by_one(proto, x[:1000]))
    native = model.predict_proba(x)
    assert np.nanmax(np.abs(scorer(x)[:, :n_classes] - native)) < 1e-6


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_fast_evaluator_is_bit_identical_on_thresholds_and_nan(library, n_classes):
    from hfml.inference import probe_rows
    from hfml.treeensemble import compile_ensemble

    model, _ = trained(library, n_classes)
    proto = convert(model, len(FEATURES))
    ensemble = compile_ensemble(proto)
    probes = probe_rows(ensemble, len(FEATURES), rows=3000)
    reference = OnnxScorer(proto, len(FEATURES), exact_evaluator=False)(probes)
    np.testing.assert_array_equal(ensemble(probes), reference)


@pytest.mark.parametrize(
    ("parameters", "bins"),
    [
        ({"max_depth": 3}, np.uint8),
        ({"max_depth": 4, "max_bin": 4096, "n_estimators": 300}, np.uint16),
        ({"max_depth": 12, "min_child_weight": 0}, None),
    ],
)
def test_binned_and_traversal_paths_are_bit_identical(parameters, bins):
    from hfml.inference import probe_rows
    from hfml.treeensemble import compile_ensemble

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, len(FEATURES))).astype(np.float32)
    labels = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int) + (x[:, 1] > 0.8)
    model = Model("xgboost", 3, {"n_estimators": 40, **parameters}, seed=1, threads=1)
    proto = convert(model.fit(x, labels, names=FEATURES), len(FEATURES))
    ensemble = compile_ensemble(proto)
    assert (ensemble.rank.dtype if ensemble.rank is not None else None) == bins
    probes = np.vstack([probe_rows(ensemble, len(FEATURES), rows=3000), x])
    reference = OnnxScorer(proto, len(FEATURES), exact_evaluator=False)(probes)
    np.testing.assert_array_equal(ensemble(probes), reference)


def test_checked_ensembles_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("HFML_CACHE_DIR", str(tmp_path))
    model, x = trained("xgboost", 3)
    proto = export(model, FEATURES, ["a", "b", "c"], (2, 4), {})
    reference = one_by_one(proto, x[:500])
    OnnxScorer(proto, len(FEATURES))
    (entry,) = (tmp_path / "ensembles").glob("*.npz")
    cached = OnnxScorer(proto, len(FEATURES))
    assert cached._session is None  # loaded without ONNX Runtime
    np.testing.assert_array_equal(cached(x[:500]), reference)
    assert cached(x[:0]).shape == (0, 3)

    entry.write_bytes(b"damaged")
    rebuilt = OnnxScorer(proto, len(FEATURES))
    np.testing.assert_array_equal(rebuilt(x[:500]), reference)
    assert OnnxScorer(proto, len(FEATURES))._session is None

    other, _ = trained("xgboost", 3, seed=1)
    monkeypatch.setenv("HFML_CACHE_DIR", "")
    OnnxScorer(export(other, FEATURES, ["a", "b", "c"], (2, 4), {}), len(FEATURES))
    assert [p.name for p in (tmp_path / "ensembles").iterdir()] == [entry.name]


def test_fast_evaluator_declines_graphs_it_does_not_know():
    from hfml.treeensemble import compile_ensemble

    binary, _ = trained("xgboost", 2)
    probit = convert(binary, len(FEATURES))
    (transform,) = [
        a for a in probit.graph.node[0].attribute if a.name == "post_transform"
    ]
    transform.s = b"PROBIT"
    assert compile_ensemble(probit) is None
    model, _ = trained("xgboost", 3)
    proto = convert(model, len(FEATURES))
    doubled = onnx.ModelProto.FromString(proto.SerializeToString())
    two = onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two")
    doubled.graph.initializer.append(two)
    last = doubled.graph.output[-1]
    doubled.graph.node.append(
        onnx.helper.make_node("Mul", [last.name, "two"], ["doubled"])
    )
    doubled.graph.output.append(
        onnx.helper.make_tensor_value_info("doubled", onnx.TensorProto.FLOAT, None)
    )
    assert compile_ensemble(doubled) is None


def test_lightgbm_export_is_exact_on_float32_thresholds():
    """Inputs equal to a LightGBM threshold rounded up to float32 go to the
    same side in ONNX as natively: thresholds are rounded down first."""
    model, x = trained("lightgbm", 3)
    dump = model.booster.dump_model()["tree_info"]
    thresholds = []

    def walk(node):
        if "threshold" in node:
            thresholds.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in dump:
        walk(tree["tree_structure"])
    probes = np.repeat(x[:1], len(thresholds), axis=0)
    for row, (feature, threshold) in enumerate(thresholds):
        probes[row, feature] = np.float32(threshold)  # nearest, often above t
    native = model.predict_proba(probes)
    exact = OnnxScorer(convert(model, len(FEATURES)), len(FEATURES))(probes)
    np.testing.assert_allclose(exact, native, atol=1e-6)

    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    naive = onnxmltools.convert_lightgbm(
        model.booster,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        zipmap=False,
    )
    naive_scores = OnnxScorer(naive, len(FEATURES))(probes)
    assert np.max(np.abs(naive_scores - native)) > 1e-3


def test_floor_to_float32_keeps_every_float32_on_its_side():
    t = np.array([1.0058133006095888, 0.1, -0.3, 1e-35])
    f = floor_to_float32(t)
    assert np.all(f.astype(np.float64) <= t)
    above = np.nextafter(f, np.float32(np.inf))
    assert np.all(above.astype(np.float64) > t)


def test_exported_model_layout_and_metadata():
    model, _ = trained("xgboost", 3)
    proto = export(model, FEATURES, ["bkg", "prompt", "nonprompt"], (2, 4), {"a": 1})
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == len(FEATURES)
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    last = proto.graph.output[-1].type.tensor_type
    assert last.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in last.shape.dim][1] == 3
    assert all(o.type.HasField("tensor_type") for o in proto.graph.output)
    assert all(
        o.version <= 22 for o in proto.opset_import if o.domain in ("", "ai.onnx")
    )
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["features_o2physics"])[-1] == "impactParameterXY0"
    assert json.loads(meta["classes"]) == ["bkg", "prompt", "nonprompt"]
    assert json.loads(meta["pt_bin"]) == [2, 4]
    assert "xgboost" in json.loads(meta["versions"])
    assert len(meta["config_sha256"]) == 64


def hipe4ml_like(proto: onnx.ModelProto) -> onnx.ModelProto:
    """As exported for O2Physics elsewhere: batch fixed to 1, no metadata, an old
    IR version with only the ai.onnx.ml opset."""
    model = onnx.ModelProto.FromString(proto.SerializeToString())
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_value = 1
    del model.metadata_props[:]
    model.ir_version = 4
    del model.opset_import[:]
    model.opset_import.add(domain="ai.onnx.ml", version=1)
    return model


def test_fixed_batch_model_without_metadata_scores_in_batches_bit_identically():
    model, x = trained("xgboost", 3)
    foreign = hipe4ml_like(convert(model, len(FEATURES)))
    assert foreign.graph.node[0].op_type == "TreeEnsembleClassifier"
    response = MlResponse([foreign], [2, 4], [[0.5, 0.0, 0.0]], [0, 1, 1], 3, 4)
    pt = np.full(200, 3.0)
    batched = response.scores(x[:200], pt)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(foreign.SerializeToString(), options)
    rows = np.vstack(
        [session.run(None, {"input": x[i : i + 1]})[-1] for i in range(200)]
    )
    np.testing.assert_array_equal(batched, rows[:, :3])


def test_n_classes_smaller_than_model_width_keeps_the_first_values():
    model, x = trained("xgboost", 3)
    proto = export(model, FEATURES, ["a", "b", "c"], (2, 4), {})
    response = MlResponse(
        [proto],
        [2, 4],
        [[0.5, 0.0]],
        [CUT_GREATER, CUT_SMALLER],
        2,
        4,
    )
    scores = response.scores(x[:50], np.full(50, 3.0))
    assert scores.shape == (50, 2)
    full = OnnxScorer(proto, 4)(x[:50])
    assert full.shape == (50, 3)
    np.testing.assert_array_equal(scores, full[:, :2])


def test_candidates_outside_the_bins_are_not_scored_but_counted():
    model, x = trained("xgboost", 2)
    proto = export(model, FEATURES, ["a", "b"], (2, 4), {})
    response = MlResponse([proto, proto], [2, 4, 6], [[1, 0], [1, 0]], [0, 1], 2, 4)
    pt = np.array([1.0, 2.0, 5.9, 6.0, 3.0])
    scores = response.scores(x[:5], pt)
    assert np.isnan(scores[[0, 3]]).all() and not np.isnan(scores[[1, 2, 4]]).any()
    assert response.outside(pt) == 2
    assert response.select(scores, pt).tolist() == [False, True, True, False, True]
    bins, together, selected = response.evaluate(x[:5], pt)
    assert bins.tolist() == [-1, 0, 1, -1, 0]
    np.testing.assert_array_equal(together, scores)
    assert selected.tolist() == [False, True, True, False, True]


def test_model_with_zipmap_output_is_a_clear_error():
    model, _ = trained("lightgbm", 3)
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    zipmap = onnxmltools.convert_lightgbm(
        model.booster, initial_types=[("input", FloatTensorType([None, 4]))]
    )
    with pytest.raises(InputError, match=r"is not a tensor.*zipmap=False"):
        OnnxScorer(zipmap, 4)


def test_model_of_other_width_is_a_clear_error():
    model, _ = trained("xgboost", 2)
    with pytest.raises(InputError, match=r"takes 4 features, the feature list has 5"):
        OnnxScorer(convert(model, 4), 5)


def test_corrupt_onnx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07garbage that is no protobuf" * 3)
    with pytest.raises(InputError, match=r"model\.onnx.*not a readable ONNX model"):
        OnnxScorer(str(path), 4)


def test_feature_without_o2physics_name_is_a_config_error():
    names = o2_names(["fCpa", "fImpactParameter2", "fImpactParameterZ0"])
    assert names == ["cpa", "impactParameterXY2", "impactParameterZ0"]
    with pytest.raises(ConfigError, match=r"features\[1\].*'fM' has no O2Physics"):
        o2_names(["fCpa", "fM"])


def test_validation_fails_on_a_wrong_model():
    model, x = trained("xgboost", 2, seed=0)
    other, _ = trained("xgboost", 2, seed=5)
    wrong = export(other, FEATURES, ["a", "b"], (2, 4), {})
    pt = np.full(len(x), 3.0)
    with pytest.raises(ValidationError, match="differs from the native one"):
        validate(model, wrong, x, pt, (2, 4), [0.5, 0.0], [0, 1])
    right = export(model, FEATURES, ["a", "b"], (2, 4), {})
    result = validate(model, right, x, pt, (2, 4), [0.5, 0.0], [0, 1])
    assert result["decision_changes"] == 0 and result["max_abs_difference"] < 1e-5


def test_o2physics_config_parses_with_consistent_shapes():
    block = o2physics_config(
        [2, 4, 8],
        [[0.1, 0.0, 0.0], [0.2, 0.5, 0.0]],
        [0, 1, 1],
        3,
        ["cpa", "decayLength"],
        ["a.onnx", "b.onnx"],
        "Users/x/ML",
        ["bkg", "prompt", "nonprompt"],
    )
    selector = json.loads(json.dumps(block))["hf-candidate-selector-ds-to-k-k-pi"]
    n_bins = len(selector["binsPtMl"]["values"]) - 1
    cuts = selector["cutsMl"]
    assert len(cuts["values"]) == len(cuts["labels_rows"]) == n_bins
    assert all(len(r) == len(cuts["labels_cols"]) == 3 for r in cuts["values"])
    assert len(selector["cutDirMl"]["values"]) == int(selector["nClassesMl"]) == 3
    assert len(selector["onnxFileNames"]["values"]) == n_bins
    assert all(isinstance(v, str) for v in selector["binsPtMl"]["values"])
    assert cuts["values"][1][1] == "0.5"

"""Export of the native models to ONNX, validated against them.

The exported model takes float32 [N, F] with a dynamic batch dimension and
has plain tensor outputs, the last being the class probabilities float32
[N, n_classes]; its opsets run on ONNX Runtime 1.22, the version ALICE builds.

XGBoost compares ``x < t`` with float32 thresholds, exactly as ONNX does.
LightGBM compares ``x <= t`` with double thresholds, ONNX with float32 ones:
for every float32 x, ``x <= t`` holds exactly when ``x <= f`` with f the
largest float32 not above t, so the thresholds are rounded down to float32
before the conversion and the export is exact on float32 inputs.
"""

import json
import logging
import re
from collections.abc import Mapping, Sequence
from importlib.metadata import version as distribution_version
from pathlib import Path

import numpy as np
import onnx

from hfml import __version__
from hfml.errors import ConfigError, HfmlError, nearest
from hfml.files import atomic_outputs, write_json
from hfml.inference import OnnxScorer, dynamic_batch, passes
from hfml.models import Model, library_version
from hfml.o2 import DS_ML_FEATURES, DS_SELECTOR, bin_index, o2_feature_name
from hfml.provenance import KEY as PROVENANCE_KEY
from hfml.provenance import config_hash, software

log = logging.getLogger(__name__)

TARGET_OPSET = 15
"""Default-domain opset of the exported graphs (ONNX Runtime 1.22 runs up to 22)."""


class ValidationError(HfmlError):
    """The ONNX model does not reproduce the native model."""


def o2_names(features: Sequence[str]) -> list[str]:
    """O2Physics names of the features, checked against the selector's list."""
    names = []
    for i, branch in enumerate(features):
        name = o2_feature_name(branch)
        if name not in DS_ML_FEATURES:
            raise ConfigError(
                f"config key 'features[{i}]': branch {branch!r} has no O2Physics "
                f"input-feature name ({name!r} is not accepted by the Ds selector"
                f"{nearest(name, DS_ML_FEATURES)}); the model could not be deployed"
            )
        names.append(name)
    return names


def floor_to_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 not greater than each double."""
    values = np.asarray(values, np.float64)
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _lightgbm_float32_thresholds(booster):
    """A copy of a LightGBM booster with thresholds rounded down to float32."""
    import lightgbm

    def replace(match: re.Match) -> str:
        values = np.array(match.group(1).split(), np.float64)
        floored = floor_to_float32(values).astype(np.float64)
        return "threshold=" + " ".join(repr(float(v)) for v in floored)

    text = re.sub(r"^threshold=(.*)$", replace, booster.model_to_string(), flags=re.M)
    # The byte sizes of the trees change with the thresholds' text; without
    # them LightGBM parses the trees one after the other.
    text = re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)
    return lightgbm.Booster(model_str=text)


def convert(model: Model, n_features: int) -> onnx.ModelProto:
    """ONNX graph of a native model: input ``input`` float32 [N, F]."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    initial = [("input", FloatTensorType([None, n_features]))]
    if model.library == "xgboost":
        proto = onnxmltools.convert_xgboost(
            model.estimator, initial_types=initial, target_opset=TARGET_OPSET
        )
    else:
        booster = _lightgbm_float32_thresholds(model.booster)
        proto = onnxmltools.convert_lightgbm(
            booster, initial_types=initial, target_opset=TARGET_OPSET, zipmap=False
        )
    return dynamic_batch(proto)


def export(
    model: Model,
    features: Sequence[str],
    classes: Sequence[str],
    edges: tuple[float, float],
    config: Mapping,
    provenance: Mapping | None = None,
) -> onnx.ModelProto:
    """The ONNX model with its metadata (names, classes, bin, versions, hash).

    ``provenance``, that of the native model, is stored with the software of
    the export.
    """
    proto = convert(model, len(features))
    library = model.library
    metadata = {
        "features": json.dumps(list(features)),
        "features_o2physics": json.dumps(o2_names(features)),
        "classes": json.dumps(list(classes)),
        "pt_bin": json.dumps(list(edges)),
        "library": library,
        "versions": json.dumps(
            {
                library: library_version(library),
                "onnxmltools": distribution_version("onnxmltools"),
                "onnx": onnx.__version__,
                "hfml": __version__,
            }
        ),
        "config_sha256": config_hash(config),
        "producer": f"hfml {__version__}",
    }
    if provenance is not None:
        record = {**provenance, "software": software()}
        metadata[PROVENANCE_KEY] = json.dumps(record, sort_keys=True)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "hfml"
    # The converters name the graph with a random UUID; a fixed name keeps
    # exports of the same model byte-identical.
    proto.graph.name = f"hfml_{library}_pt{edges[0]:g}_{edges[1]:g}"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return proto


def validate(
    model: Model,
    onnx_model,
    features: np.ndarray,
    pt: np.ndarray,
    edges: tuple[float, float],
    cuts: Sequence[float] | Sequence[Sequence[float]],
    cut_dirs: Sequence[int],
    tolerance: float = 1e-5,
) -> dict:
    """Compare ONNX Runtime (one thread) with the native model.

    ``cuts`` is one row of cuts or several (working points to check).  Returns
    the largest probability difference and the number of candidates whose
    selection differs at any of the rows; raises :class:`ValidationError` if
    the difference exceeds ``tolerance`` or any decision changes.
    """
    rows = [list(cuts)] if np.ndim(cuts) == 1 else [list(r) for r in cuts]
    native = model.predict_proba(features)
    scorer = OnnxScorer(
        onnx_model, features.shape[1], "exported model", exact_evaluator=False
    )
    exported = scorer(features)[:, : native.shape[1]]
    difference = float(np.max(np.abs(exported - native))) if len(native) else 0.0
    in_bin = bin_index(pt, list(edges)) == 0
    flips, kept = 0, []
    for row in rows:
        kept_native = passes(native, row, cut_dirs)
        kept.append(int(kept_native.sum()))
        flips += int(np.sum(kept_native != passes(exported, row, cut_dirs)))
    result = {
        "candidates": len(native),
        "candidates_in_bin": int(in_bin.sum()),
        "max_abs_difference": difference,
        "tolerance": tolerance,
        "working_points": rows,
        "decision_changes": flips,
        "selected_native": kept,
        "exact": bool(np.array_equal(exported, native)),
    }
    if difference > tolerance or flips:
        raise ValidationError(
            f"the ONNX model differs from the native one: largest probability "
            f"difference {difference:.3g} (tolerance {tolerance:g}), {flips} "
            f"candidates change their selection at cuts {rows}"
        )
    return result


def o2physics_config(
    edges: Sequence[float],
    cuts: Sequence[Sequence[float]],
    cut_dirs: Sequence[int],
    n_classes: int,
    feature_names: Sequence[str],
    onnx_files: Sequence[str],
    ccdb_path: str,
    classes: Sequence[str],
) -> dict:
    """The Ds selector's ML block of a dpl-config, values written as strings."""

    def text(value) -> str:
        return repr(float(value)) if isinstance(value, float) else str(value)

    labels = [f"pT bin {i}" for i in range(len(edges) - 1)]
    return {
        DS_SELECTOR: {
            "applyMl": "true",
            "binsPtMl": {"values": [text(float(e)) for e in edges]},
            "cutDirMl": {"values": [str(int(d)) for d in cut_dirs]},
            "cutsMl": {
                "values": [[text(float(c)) for c in row] for row in cuts],
                "labels_rows": labels,
                "labels_cols": [
                    f"score class {k} ({name})" for k, name in enumerate(classes)
                ],
            },
            "nClassesMl": str(n_classes),
            "namesInputFeatures": {"values": list(feature_names)},
            "onnxFileNames": {"values": list(onnx_files)},
            "modelPathsCCDB": {"values": [ccdb_path]},
            "loadModelsFromCCDB": "false",
            "timestampCCDB": "-1",
            "ccdbUrl": "http://alice-ccdb.cern.ch",
        }
    }


def export_bin(
    config: Mapping, ptbin: str, model_path: str, info_path: str, onnx_path: str
) -> None:
    """The export job of one pT bin."""
    from hfml.models import load
    from hfml.training import bin_edges

    info = json.loads(Path(info_path).read_text())
    proto = export(
        load(model_path),
        info["features"],
        info["classes"],
        bin_edges(config, ptbin),
        config,
        info.get("provenance"),
    )
    with atomic_outputs(onnx_path) as (temporary,):
        temporary.write_bytes(proto.SerializeToString())
    log.info(
        "%s: exported %s (%d bytes)", ptbin, onnx_path, Path(onnx_path).stat().st_size
    )


def validate_bin(
    config: Mapping,
    ptbin: str,
    model_path: str,
    onnx_path: str,
    info_path: str,
    test_path: str,
    output: str,
) -> dict:
    """The validation job of one pT bin: ONNX Runtime against the native model
    on the held-out set, at the loose cuts and at the bin's cuts if they are
    given (optimised cuts are checked when they are chosen)."""
    import pandas as pd

    from hfml.config import pt_bin_labels
    from hfml.models import load
    from hfml.training import bin_edges

    info = json.loads(Path(info_path).read_text())
    test = pd.read_parquet(test_path)
    index = pt_bin_labels(config["pt_bins"]).index(ptbin)
    rows = [config["apply"]["loose_cuts"]]
    if config["selection"]["cuts"] != "optimise":
        rows.append(config["selection"]["cuts"][index])
    result = validate(
        load(model_path),
        onnx_path,
        test[info["features"]].to_numpy(np.float32),
        test["fPt"].to_numpy(),
        bin_edges(config, ptbin),
        rows,
        config["selection"]["cut_dirs"],
        config["export"]["tolerance"],
    )
    write_json(output, {"ptbin": ptbin, **result})
    log.info(
        "%s: ONNX Runtime vs native model on %d held-out candidates: largest "
        "difference %.2g, %d decisions changed",
        ptbin,
        result["candidates"],
        result["max_abs_difference"],
        result["decision_changes"],
    )
    return result


def write_o2physics(
    config: Mapping,
    onnx_paths: Sequence[str],
    features: Sequence[str],
    cuts_path: str,
    output: str,
    uploads: str,
) -> dict:
    """The selector's dpl-config block and the list of files to upload, with
    the cuts of ``cuts_path``."""
    from hfml.config import pt_bin_labels
    from hfml.workingpoint import read_cuts

    selection = config["selection"]
    names = [
        f"{selection['onnx_prefix']}_{b}.onnx" for b in pt_bin_labels(config["pt_bins"])
    ]
    block = o2physics_config(
        config["pt_bins"],
        read_cuts(cuts_path),
        selection["cut_dirs"],
        len(config["classes"]),
        o2_names(features),
        names,
        selection["ccdb_path"],
        [c["name"] for c in config["classes"]],
    )
    lines = [
        f"{local}\t{selection['ccdb_path']}/{name}"
        for local, name in zip(onnx_paths, names, strict=True)
    ]
    with atomic_outputs(output, uploads) as (dpl, listing):
        dpl.write_text(json.dumps(block, indent=2) + "\n")
        listing.write_text("# local ONNX file\tCCDB path\n" + "\n".join(lines) + "\n")
    return block

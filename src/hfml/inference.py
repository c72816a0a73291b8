"""Model application with the semantics of O2Physics' ``MlResponse``.

One ONNX model per pT bin; a bin is [low, high).  A model's LAST output is
read and its first ``n_classes`` values kept.  Per class, ``CutGreater`` (0)
rejects a score greater than the cut, ``CutSmaller`` (1) a score smaller than
the cut, ``CutNot`` (2) skips the class; a score equal to the cut passes, and
the float32 score is promoted to double before the comparison, as in C++.

Scores are those of ONNX Runtime with one intra-op thread (as on the Grid),
computed in batches: with one thread a batch gives, bit for bit, the scores
of one candidate at a time.  Models exported elsewhere with a fixed batch of
one are given a dynamic batch dimension in memory.

Candidates outside the pT bins are not scored (O2Physics would abort on
them): their scores are NaN and they are counted.
"""

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hfml.errors import InputError
from hfml.o2 import bin_index

if TYPE_CHECKING:  # onnx takes half a second to import; jobs that find their
    import onnx  # models in the cache never need it

log = logging.getLogger(__name__)

CUT_GREATER, CUT_SMALLER, CUT_NOT = 0, 1, 2


def passes(
    scores: np.ndarray, cuts: Sequence[float], directions: Sequence[int]
) -> np.ndarray:
    """O2Physics' per-class cut of scores [N, n_classes] with one cut row."""
    scores = np.asarray(scores, np.float32).astype(np.float64)
    keep = np.ones(len(scores), bool)
    for k, (cut, direction) in enumerate(zip(cuts, directions, strict=True)):
        if direction == CUT_GREATER:
            keep &= ~(scores[:, k] > float(cut))
        elif direction == CUT_SMALLER:
            keep &= ~(scores[:, k] < float(cut))
        elif direction != CUT_NOT:
            raise ValueError(f"cut direction must be 0, 1 or 2, not {direction}")
    return keep


def _read_bytes(
    model: "str | os.PathLike | bytes | onnx.ModelProto",
) -> tuple[bytes, "onnx.ModelProto | None"]:
    """The model's serialised bytes, and the model if it came parsed."""
    if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
        return model.SerializeToString(), model
    if isinstance(model, bytes):
        return model, None
    try:
        return Path(model).read_bytes(), None
    except FileNotFoundError as err:
        raise InputError(f"ONNX model {model!r} does not exist") from err


def _parse(blob: bytes, name) -> "onnx.ModelProto":
    import onnx

    try:
        return onnx.load_from_string(blob)
    except Exception as err:  # onnx raises DecodeError and friends
        raise InputError(f"{name!r} is not a readable ONNX model: {err}") from err


def dynamic_batch(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """A copy whose inputs and outputs have a free first (batch) dimension."""
    model = type(model).FromString(model.SerializeToString())
    for value in [*model.graph.input, *model.graph.output]:
        shape = value.type.tensor_type.shape
        if value.type.HasField("tensor_type") and len(shape.dim):
            shape.dim[0].Clear()
            shape.dim[0].dim_param = "N"
    return model


def check_model(model: "onnx.ModelProto", n_features: int, name: str) -> None:
    """Plain tensor outputs and an input as wide as the feature list."""
    for output in model.graph.output:
        if not output.type.HasField("tensor_type"):
            raise InputError(
                f"{name}: output {output.name!r} is not a tensor (a ZipMap or "
                "sequence output); O2Physics needs plain tensor outputs: export "
                "with zipmap=False"
            )
    inputs = [
        i
        for i in model.graph.input
        if i.name not in {x.name for x in model.graph.initializer}
    ]
    if len(inputs) != 1:
        raise InputError(f"{name}: expected one input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    width = (
        dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
    )
    if width is not None and width != n_features:
        raise InputError(
            f"{name}: the model takes {width} features, the feature list has "
            f"{n_features}"
        )


class OnnxScorer:
    """One model, scored in batches exactly as ONNX Runtime with one thread.

    Tree ensembles are evaluated by :mod:`hfml.treeensemble`, bit for bit as
    ONNX Runtime (checked on probe rows the first time a model is seen, with
    ONNX Runtime kept otherwise); other models by ONNX Runtime itself.  A
    checked ensemble is cached by the model's content (see
    :func:`cache_directory`), so that later jobs load it without building an
    ONNX Runtime session.
    """

    def __init__(
        self, model, n_features: int, name: str = "model", exact_evaluator: bool = True
    ) -> None:
        blob, proto = _read_bytes(model)
        self.n_features = n_features
        self.name = name
        self._blob, self._proto = blob, proto
        self._session = None
        self.ensemble = None
        # A cached ensemble was checked with these bytes and this feature
        # count, so a hit needs neither parsing nor checking the model.
        key = _cache_key(blob, n_features) if exact_evaluator else None
        if key is not None:
            self.ensemble = _cached(key)
        if self.ensemble is None:
            self._proto = proto if proto is not None else _parse(blob, model)
            check_model(self._proto, n_features, name)
            self._blob = None
            if exact_evaluator:
                self.ensemble = _checked_ensemble(self._proto, self)
                if self.ensemble is not None:
                    _store(self.ensemble, key)
        if self.ensemble is None:
            self._start_session()

    def _start_session(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if self._proto is None:
            self._proto = _parse(self._blob, self.name)
            self._blob = None
        try:
            self._session = onnxruntime.InferenceSession(
                dynamic_batch(self._proto).SerializeToString(),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as err:
            raise InputError(
                f"{self.name}: ONNX Runtime cannot load it: {err}"
            ) from err
        self.input = self._session.get_inputs()[0].name
        self.output = self._session.get_outputs()[-1].name

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(
                f"{self.name}: expected features [N, {self.n_features}], got {x.shape}"
            )
        if self.ensemble is not None:
            return self.ensemble(x)
        if not len(x):
            dims = self._session.get_outputs()[-1].shape
            width = dims[-1] if len(dims) == 2 and isinstance(dims[-1], int) else 0
            return np.empty((0, width), np.float32)
        return self.onnxruntime(x)

    def onnxruntime(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            self._start_session()
        (scores,) = self._session.run([self.output], {self.input: x})
        return np.asarray(scores, np.float32).reshape(len(x), -1)


def cache_directory() -> Path | None:
    """Where checked ensembles are cached: ``$HFML_CACHE_DIR`` (empty: no
    cache), else ``$XDG_CACHE_HOME/hfml`` or ``~/.cache/hfml``."""
    chosen = os.environ.get("HFML_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) if chosen else None
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "hfml"


def _cache_key(blob: bytes, n_features: int) -> str:
    """The model's bytes and everything that decides how it is evaluated."""
    from importlib.metadata import version

    from hfml import __version__, treeensemble

    digest = hashlib.sha256(blob)
    digest.update(Path(treeensemble.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())  # the checks a cached entry passed
    runtime = version("onnxruntime")
    digest.update(f"{__version__} {runtime} {n_features}".encode())
    return digest.hexdigest()


def _cache_path(key: str) -> Path | None:
    folder = cache_directory()
    return folder / "ensembles" / f"{key}.npz" if folder else None


def _cached(key: str):
    """The cached ensemble of ``key``, or None."""
    from hfml.treeensemble import Ensemble

    path = _cache_path(key)
    if path is None or not path.exists():
        return None
    try:
        return Ensemble.load(path)
    except Exception as err:  # a damaged entry is rebuilt
        log.warning("ignoring the damaged cache entry %s: %s", path, err)
        return None


def _store(ensemble, key: str) -> None:
    """Cache an ensemble atomically; a read-only or full disk only costs time."""
    path = _cache_path(key)
    if path is None:
        return
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=".", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            ensemble.save(handle)
        os.replace(temporary, path)
    except OSError as err:
        log.info("cannot cache the checked ensemble in %s: %s", path, err)
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def probe_rows(ensemble, n_features: int, rows: int = 512) -> np.ndarray:
    """Rows that sit on, just below and just above the model's thresholds,
    with some NaN: where a wrong comparison would show."""
    rng = np.random.default_rng(0)
    values = ensemble.threshold[np.isfinite(ensemble.threshold)]
    values = np.concatenate(
        [
            values,
            np.nextafter(values, np.float32(-np.inf)),
            np.nextafter(values, np.float32(np.inf)),
            rng.normal(size=64).astype(np.float32),
        ]
    )
    x = rng.choice(values, size=(rows, n_features)).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan
    return x


def _checked_ensemble(proto, scorer: OnnxScorer):
    from hfml.treeensemble import compile_ensemble

    ensemble = compile_ensemble(proto)
    if ensemble is None or ensemble.n_features > scorer.n_features:
        return None
    probes = probe_rows(ensemble, scorer.n_features)
    reference = scorer.onnxruntime(probes)
    if not np.array_equal(ensemble(probes), reference[:, : ensemble.n_outputs]):
        log.warning(
            "%s: the fast evaluator differs from ONNX Runtime on probe "
            "rows; using ONNX Runtime",
            scorer.name,
        )
        return None
    if reference.shape[1] != ensemble.n_outputs:
        return None
    return ensemble


class Evaluation(NamedTuple):
    """What ``MlResponse.evaluate`` finds for each candidate."""

    bins: np.ndarray
    """pT bin index, -1 outside the bins"""
    scores: np.ndarray
    """[N, n_classes] float32, NaN outside the bins"""
    selected: np.ndarray
    """whether the candidate passes its bin's cuts"""


class MlResponse:
    """Per-pT-bin ONNX models, cuts and cut directions, applied as O2Physics does.

    Args:
        models: one ONNX model (path, bytes or ModelProto) per pT bin.
        pt_edges: bin edges in GeV/c, one more than models.
        cuts: table [pT bin][class] of cut values.
        cut_dirs: one direction per class (0 CutGreater, 1 CutSmaller, 2 CutNot).
        n_classes: number of classes kept from the model's last output.
        n_features: width of the feature arrays, in model input order.
    """

    def __init__(
        self,
        models: Sequence,
        pt_edges: Sequence[float],
        cuts: Sequence[Sequence[float]],
        cut_dirs: Sequence[int],
        n_classes: int,
        n_features: int,
    ) -> None:
        if len(models) != len(pt_edges) - 1:
            raise ValueError(f"{len(models)} models for {len(pt_edges) - 1} pT bins")
        if len(cuts) != len(models) or any(len(row) != n_classes for row in cuts):
            raise ValueError(f"cuts must be a [{len(models)}][{n_classes}] table")
        if len(cut_dirs) != n_classes:
            raise ValueError(f"{len(cut_dirs)} cut directions for {n_classes} classes")
        self.pt_edges = list(pt_edges)
        self.cuts = [list(row) for row in cuts]
        self.cut_dirs = list(cut_dirs)
        self.n_classes = n_classes
        self.scorers = [
            OnnxScorer(m, n_features, f"model of pT bin {i}")
            for i, m in enumerate(models)
        ]

    def warm_up(self) -> None:
        """Score one candidate with every model, so that the evaluator's
        compiled kernels are loaded before the first real batch (the first
        call in a process costs a few tenths of a second)."""
        for scorer in self.scorers:
            scorer(np.zeros((1, scorer.n_features), np.float32))

    def bin_index(self, pt: np.ndarray) -> np.ndarray:
        return bin_index(pt, self.pt_edges)

    def scores(self, features: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """Scores [N, n_classes] float32; NaN for candidates outside the bins."""
        return self._scores(features, self.bin_index(pt))

    def select(self, scores: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """Whether each candidate passes its bin's cuts (False outside the bins)."""
        return self._select(scores, self.bin_index(pt))

    def evaluate(self, features: np.ndarray, pt: np.ndarray) -> Evaluation:
        """Bin, scores and decision of each candidate, with the bins found once."""
        bins = self.bin_index(pt)
        scores = self._scores(features, bins)
        return Evaluation(bins, scores, self._select(scores, bins))

    def _scores(self, features: np.ndarray, bins: np.ndarray) -> np.ndarray:
        features = np.asarray(features, np.float32)
        out = np.full((len(features), self.n_classes), np.nan, np.float32)
        for index, scorer in enumerate(self.scorers):
            rows = np.flatnonzero(bins == index)
            if len(rows):
                scores = scorer(features[rows])
                if scores.shape[1] < self.n_classes:
                    raise InputError(
                        f"{scorer.name}: its last output has {scores.shape[1]} "
                        f"values, fewer than the {self.n_classes} classes"
                    )
                out[rows] = scores[:, : self.n_classes]
        return out

    def _select(self, scores: np.ndarray, bins: np.ndarray) -> np.ndarray:
        keep = np.zeros(len(scores), bool)
        for index, row in enumerate(self.cuts):
            rows = bins == index
            keep[rows] = passes(scores[rows], row, self.cut_dirs)
        return keep

    def outside(self, pt: np.ndarray) -> int:
        """Candidates with no pT bin (O2Physics would stop on them)."""
        return int(np.sum(self.bin_index(pt) < 0))

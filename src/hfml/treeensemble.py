"""Exact, fast evaluation of an ONNX ``TreeEnsembleClassifier``.

It reproduces ONNX Runtime run with one thread bit for bit: trees in
ascending id order, per-class sums in float32, ``base_values`` added after all
trees, then a float32 softmax with the C library's ``expf``, a float32 sum in
class order and a float32 division (for binary models, ONNX Runtime's
logistic function of the one sum).  Every tree is padded to a complete tree
of the ensemble's largest depth (a shallow leaf's weight copied to all leaves
below it), so that a traversal is the same fixed number of steps for every
row, without data-dependent branches to mispredict.  Rows are processed in
blocks, trees outer and rows inner, so that a tree stays in cache.

Shallow ensembles go through a faster path.  A tree compares each feature
with a few hundred distinct float32 thresholds at most, so a feature value is
replaced, exactly, by its bin: the number of thresholds at or below it (one
byte where there are fewer than 255).  All nodes of a tree level are then
compared for a whole block of rows at once, bytes in SIMD lanes, and the
comparison on each row's path is picked by a multiplexer over the bits of
the levels above it, without branches.  Rows with a NaN, whose
side depends on each node's missing-value track, take the traversal.

Only graphs this module fully understands are accepted: one
TreeEnsembleClassifier on the graph input, with SOFTMAX and three or more
classes or LOGISTIC and two, each tree feeding one class, one comparison
mode, followed only by exact no-ops (Identity, Cast to float, Mul by 1).
:func:`compile_ensemble` returns None for anything else, and the caller uses
ONNX Runtime.
"""

import json
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:  # parsing is needed only when a model is first compiled
    import onnx

BLOCK = 256


@dataclass
class Ensemble:
    feature: np.ndarray
    """[trees, 2^depth - 1] feature index of every padded internal node"""
    threshold: np.ndarray
    """[trees, 2^depth - 1] float32 threshold"""
    missing_true: np.ndarray
    """[trees, 2^depth - 1] whether NaN goes to the true branch"""
    leaves: np.ndarray
    """[trees, 2^depth] float32 leaf weight"""
    tree_class: np.ndarray
    """[trees] the class each tree adds to"""
    base: np.ndarray
    """[classes] float32 base values"""
    depth: int
    less_equal: bool
    """BRANCH_LEQ (True) or BRANCH_LT (False)"""
    n_features: int
    edges: np.ndarray | None = None
    """[features, most thresholds] the strict thresholds of each feature,
    ascending, padded with +inf; None where the binned path does not apply"""
    rank: np.ndarray | None = None
    """[trees, 2^depth - 1] a row takes the false branch where its bin is
    at least this (uint8 or uint16, the dtype of the bins)"""
    logistic: bool = False
    """binary: one sum s, probabilities [L(-s), L(s)]; else a softmax"""

    @property
    def n_outputs(self) -> int:
        return 2 if self.logistic else len(self.base)

    def save(self, handle) -> None:
        """Write the arrays and settings to an open binary file (npz)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        arrays = {k: v for k, v in values.items() if isinstance(v, np.ndarray)}
        settings = {
            k: v for k, v in values.items() if k not in arrays and v is not None
        }
        np.savez(handle, settings=np.array(json.dumps(settings)), **arrays)

    @classmethod
    def load(cls, path) -> "Ensemble":
        with np.load(path, allow_pickle=False) as stored:
            values = {k: stored[k] for k in stored.files if k != "settings"}
            values.update(json.loads(str(stored["settings"])))
        return cls(**values)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities [N, n_classes], float32."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if self.rank is None:
            sums = self._traversed(x)
        else:
            blocks = -(-len(x) // BLOCK)
            bins = np.zeros((blocks, self.n_features, BLOCK), self.rank.dtype)
            with_nan = np.zeros(blocks * BLOCK, np.bool_)
            _bin(x, self.edges, bins, with_nan)
            sums = np.zeros((blocks, len(self.base), BLOCK), np.float32)
            _accumulate_binned(
                bins,
                self.feature,
                self.rank,
                self.leaves,
                self.tree_class,
                self.depth,
                sums,
            )
            sums = sums.transpose(1, 0, 2).reshape(len(self.base), -1)
            with_nan = np.flatnonzero(with_nan)
            if len(with_nan):
                sums[:, with_nan] = self._traversed(x[with_nan])
        out = np.empty((len(x), self.n_outputs), np.float32)
        (_logistic if self.logistic else _softmax)(sums, self.base, out)
        return out

    def _traversed(self, x: np.ndarray) -> np.ndarray:
        """Per-class sums [n_classes, N] by traversal of the padded trees."""
        sums = np.zeros((len(self.base), len(x)), np.float32)
        for start in range(0, len(x), BLOCK):
            stop = min(start + BLOCK, len(x))
            # The NaN test costs time in the hot loop: only blocks with a NaN
            # take the kernel that has it.
            nan_aware = bool(np.isnan(x[start:stop]).any())
            _accumulate(
                x,
                start,
                stop,
                self.feature,
                self.threshold,
                self.missing_true,
                self.leaves,
                self.tree_class,
                self.depth,
                sums,
                self.less_equal,
                nan_aware,
            )
        return sums


def _attributes(node) -> dict:
    from onnx.helper import get_attribute_value

    return {a.name: get_attribute_value(a) for a in node.attribute}


def _exact_no_ops(model: "onnx.ModelProto", start: str) -> bool:
    """Whether the last graph output is ``start`` after exact no-ops only."""
    import onnx
    from onnx import numpy_helper

    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers = {name: n for n in model.graph.node for name in n.input}
    current, target = start, model.graph.output[-1].name
    while current != target:
        node = consumers.get(current)
        if node is None:
            return False
        attributes = _attributes(node)
        if node.op_type == "Identity":
            pass
        elif node.op_type == "Cast":
            if attributes.get("to") != onnx.TensorProto.FLOAT:
                return False
        elif node.op_type == "Mul":
            other = [i for i in node.input if i != current]
            if len(other) != 1 or other[0] not in initializers:
                return False
            factor = initializers[other[0]]
            if factor.size != 1 or float(factor.reshape(-1)[0]) != 1.0:
                return False
        else:
            return False
        current = node.output[0]
    return True


def compile_ensemble(model: "onnx.ModelProto") -> Ensemble | None:
    """The padded ensemble of a supported graph, or None."""
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    inputs = [i.name for i in model.graph.input]
    if len(nodes) != 1 or len(inputs) != 1 or list(nodes[0].input) != inputs:
        return None
    (node,) = nodes
    a = _attributes(node)
    labels = a.get("classlabels_int64s") or a.get("classlabels_strings") or []
    transform = a.get("post_transform", b"NONE")
    if (transform, min(len(labels), 3)) not in ((b"SOFTMAX", 3), (b"LOGISTIC", 2)):
        return None
    if not _exact_no_ops(model, node.output[1]):
        return None
    modes = set(a["nodes_modes"]) - {b"LEAF"}
    if len(modes) != 1 or next(iter(modes)) not in (b"BRANCH_LEQ", b"BRANCH_LT"):
        return None
    if "nodes_values_as_tensor" in a or "class_weights_as_tensor" in a:
        return None

    try:
        return _padded(a, labels, modes)
    except ValueError:  # a tree refers to a node it does not have
        return None


def _padded(a: dict, labels, modes: set) -> Ensemble | None:
    """Complete trees of the ensemble; None where a check fails."""
    tree_ids = np.asarray(a["nodes_treeids"], np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], np.int64)
    leaf = np.array([m == b"LEAF" for m in a["nodes_modes"]])
    features = np.asarray(a["nodes_featureids"], np.int64)
    values = np.asarray(a["nodes_values"], np.float32)
    true_ids = np.asarray(a["nodes_truenodeids"], np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], np.int64)
    missing = np.asarray(
        a.get("nodes_missing_value_tracks_true") or np.zeros(len(leaf)), bool
    )
    order = np.unique(tree_ids)
    tree_index = np.searchsorted(order, tree_ids)
    # A node is found by (tree index, node id) through one sorted key.
    width = int(node_ids.max()) + 1
    keys = tree_index * width + node_ids
    by_key = np.argsort(keys)
    sorted_keys = keys[by_key]

    def lookup(trees, nodes):
        wanted = trees * width + nodes
        place = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
        found = by_key[place]
        if not np.array_equal(keys[found], wanted):
            raise ValueError("a tree refers to a node it does not have")
        return found

    w_tree = np.searchsorted(order, np.asarray(a["class_treeids"], np.int64))
    w_node = np.asarray(a["class_nodeids"], np.int64)
    w_class = np.asarray(a["class_ids"], np.int64)
    w_value = np.asarray(a["class_weights"], np.float32)
    w_index = lookup(w_tree, w_node)
    if len(np.unique(w_index)) != len(w_index) or not leaf[w_index].all():
        return None
    if np.count_nonzero(leaf) != len(w_index):
        return None
    tree_class = np.full(len(order), -1, np.int64)
    tree_class[w_tree] = w_class
    if np.any(tree_class[w_tree] != w_class) or np.any(tree_class < 0):
        return None
    weight_of = np.zeros(len(leaf), np.float32)
    weight_of[w_index] = w_value

    # Walk all trees level by level, placing nodes in complete trees.
    frontier = lookup(np.arange(len(order)), np.zeros(len(order), np.int64))
    positions = np.zeros(len(order), np.int64)
    levels = []
    while len(frontier):
        levels.append((frontier, positions))
        branch = ~leaf[frontier]
        trees_of = tree_index[frontier[branch]]
        children = np.concatenate(
            [
                lookup(trees_of, true_ids[frontier[branch]]),
                lookup(trees_of, false_ids[frontier[branch]]),
            ]
        )
        positions = np.concatenate(
            [2 * positions[branch] + 1, 2 * positions[branch] + 2]
        )
        frontier = children
    depth = len(levels) - 1
    internal = 2**depth - 1
    feature = np.zeros((len(order), max(internal, 1)), np.int64)
    threshold = np.full((len(order), max(internal, 1)), np.inf, np.float32)
    missing_true = np.ones((len(order), max(internal, 1)), np.bool_)
    real = np.zeros((len(order), max(internal, 1)), np.bool_)
    leaves = np.zeros((len(order), 2**depth), np.float32)
    for level, (nodes, places) in enumerate(levels):
        trees_of = tree_index[nodes]
        branch = ~leaf[nodes]
        feature[trees_of[branch], places[branch]] = features[nodes[branch]]
        threshold[trees_of[branch], places[branch]] = values[nodes[branch]]
        missing_true[trees_of[branch], places[branch]] = missing[nodes[branch]]
        real[trees_of[branch], places[branch]] = True
        # A leaf above the bottom fills every padded leaf below it.
        span = 2 ** (depth - level)
        first = (places[~branch] + 1) * span - 1 - internal
        columns = first[:, None] + np.arange(span)
        leaves[trees_of[~branch][:, None], columns] = weight_of[nodes[~branch]][:, None]
    logistic = a["post_transform"] == b"LOGISTIC"
    # ONNX Runtime scores a binary model with one sum, for class 0, and writes
    # [L(-s), L(s)] only where some weight is negative: else [1 - s, s].
    n_sums = 1 if logistic else len(labels)
    base = np.asarray(a.get("base_values") or [0.0] * n_sums, np.float32)
    if len(base) != n_sums or tree_class.max() >= n_sums:
        return None
    if logistic and not np.any(w_value < 0):
        return None
    n_features = int(feature.max()) + 1 if feature.size else 0
    less_equal = modes == {b"BRANCH_LEQ"}
    edges, rank = _binning(feature, threshold, real, depth, less_equal, n_features)
    return Ensemble(
        feature,
        threshold,
        missing_true,
        leaves,
        tree_class,
        base,
        depth,
        less_equal,
        n_features,
        edges,
        rank,
        logistic,
    )


MAX_BINNED_DEPTH = 8
"""Deeper trees take the traversal: a level has 2^depth nodes to compare."""


def _binning(feature, threshold, real, depth, less_equal, n_features):
    """Bin edges per feature and the rank of every node's threshold among them,
    or (None, None) where the binned path does not apply.

    A row takes a node's true branch where ``x < t`` (``x <= t`` for
    BRANCH_LEQ, which for every non-NaN float32 is ``x < nextafter(t, inf)``,
    except at t = +inf, always true).  With the bin of x the number of edges
    at or below it, ``x < edge[k]`` is ``bin < k + 1``.
    """
    if not 1 <= depth <= MAX_BINNED_DEPTH or np.isnan(threshold[real]).any():
        return None, None
    strict = threshold
    always = np.zeros_like(real)
    if less_equal:
        always = real & (threshold == np.inf)
        strict = np.nextafter(threshold, np.float32(np.inf))
    ranked = real & ~always
    per_feature = [
        np.unique(strict[ranked & (feature == f)]) for f in range(n_features)
    ]
    most = max((len(e) for e in per_feature), default=0)
    dtype = np.uint8 if most + 1 <= np.iinfo(np.uint8).max else np.uint16
    if most + 1 > np.iinfo(dtype).max:
        return None, None
    edges = np.full((n_features, max(most, 1)), np.inf, np.float32)
    rank = np.zeros(threshold.shape, dtype)
    for f, values in enumerate(per_feature):
        edges[f, : len(values)] = values
        nodes = ranked & (feature == f)
        rank[nodes] = np.searchsorted(values, strict[nodes]) + 1
        rank[always & (feature == f)] = len(values) + 1
    # Padded nodes keep rank 0: every row goes right, to copies of one leaf.
    return edges, rank


LANES = 8
"""Rows traversed together: independent dependency chains for the CPU."""


@numba.njit(cache=True, nogil=True)
def _accumulate(
    x,
    start,
    stop,
    feature,
    threshold,
    missing_true,
    leaves,
    tree_class,
    depth,
    sums,
    less_equal,
    nan_aware,
):
    """Add every tree's leaf weight to its class's sum, rows [start, stop)."""
    n_trees = feature.shape[0]
    first_leaf = 2**depth - 1
    rows = stop - start
    full = rows - rows % LANES
    index = np.zeros(LANES, np.int64)
    for t in range(n_trees):
        c = tree_class[t]
        for r in range(0, full, LANES):
            index[:] = 0
            for _ in range(depth):
                for lane in range(LANES):
                    i = index[lane]
                    v = x[start + r + lane, feature[t, i]]
                    go = v <= threshold[t, i] if less_equal else v < threshold[t, i]
                    if nan_aware and not go and missing_true[t, i] and v != v:
                        go = True
                    index[lane] = 2 * i + 2 - go
            for lane in range(LANES):
                sums[c, start + r + lane] += leaves[t, index[lane] - first_leaf]
        for r in range(full, rows):
            i = 0
            for _ in range(depth):
                v = x[start + r, feature[t, i]]
                go = v <= threshold[t, i] if less_equal else v < threshold[t, i]
                if nan_aware and not go and missing_true[t, i] and v != v:
                    go = True
                i = 2 * i + 2 - go
            sums[c, start + r] += leaves[t, i - first_leaf]


@numba.njit(cache=True, nogil=True)
def _bin(x, edges, bins, with_nan):
    """bins[block, f, lane]: how many of feature f's edges are at or below the
    value of row block * BLOCK + lane; with_nan[row]: whether it has a NaN."""
    for f in range(edges.shape[0]):
        row = edges[f]
        for r in range(x.shape[0]):
            value = x[r, f]
            bins[r // BLOCK, f, r % BLOCK] = np.searchsorted(row, value, side="right")
            if value != value:
                with_nan[r] = True


@numba.njit(cache=True, nogil=True)
def _accumulate_binned(bins, feature, rank, leaves, tree_class, depth, sums):
    """Add every tree's leaf weight to its class's sum, for binned rows.

    For each block of rows and each tree, level by level: the comparisons of
    the level's nodes are made pairwise and at once reduced by the bit of the
    level above (which child of its parent a row's node is); the remaining
    candidates are reduced by the bits of the levels further up, down to the
    one comparison on each row's path: that row's bit for this level.
    """
    n_trees = feature.shape[0]
    half = 2 ** (depth - 1)
    ping = np.empty((half, BLOCK), np.uint8)
    pong = np.empty((half, BLOCK), np.uint8)
    bits = np.empty((depth, BLOCK), np.uint8)
    leaf = np.empty(BLOCK, np.uint8)
    for b in range(bins.shape[0]):
        block = bins[b]
        total = sums[b]
        for t in range(n_trees):
            f, q = feature[t, 0], rank[t, 0]
            for lane in range(BLOCK):
                bits[0, lane] = block[f, lane] >= q
            for d in range(1, depth):
                first = 2**d - 1
                for k in range(2 ** (d - 1)):
                    f0, q0 = feature[t, first + 2 * k], rank[t, first + 2 * k]
                    f1, q1 = feature[t, first + 2 * k + 1], rank[t, first + 2 * k + 1]
                    for lane in range(BLOCK):
                        low = np.uint8(block[f0, lane] >= q0)
                        high = np.uint8(block[f1, lane] >= q1)
                        ping[k, lane] = low ^ (bits[d - 1, lane] & (low ^ high))
                source, target = ping, pong
                for j in range(2, d + 1):
                    for k in range(2 ** (d - j)):
                        for lane in range(BLOCK):
                            low = source[2 * k, lane]
                            high = source[2 * k + 1, lane]
                            choice = bits[d - j, lane]
                            target[k, lane] = low ^ (choice & (low ^ high))
                    source, target = target, source
                for lane in range(BLOCK):
                    bits[d, lane] = source[0, lane]
            for lane in range(BLOCK):
                leaf[lane] = bits[0, lane]
            for d in range(1, depth):
                for lane in range(BLOCK):
                    leaf[lane] = 2 * leaf[lane] + bits[d, lane]
            weights = leaves[t]
            total_c = total[tree_class[t]]
            for lane in range(BLOCK):
                total_c[lane] += weights[leaf[lane]]


@numba.njit(cache=True, nogil=True)
def _softmax(sums, base, out):
    """ONNX Runtime's softmax: float32, C expf, sum in class order."""
    n_classes = base.shape[0]
    values = np.empty(n_classes, np.float32)
    for r in range(out.shape[0]):
        largest = np.float32(-np.inf)
        for k in range(n_classes):
            values[k] = sums[k, r] + base[k]
            if values[k] > largest:
                largest = values[k]
        total = np.float32(0)
        for k in range(n_classes):
            values[k] = math.exp(values[k] - largest)
            total += values[k]
        for k in range(n_classes):
            out[r, k] = values[k] / total


@numba.njit(cache=True, nogil=True)
def _logistic(sums, base, out):
    """ONNX Runtime's binary output: [L(-s), L(s)] with L(v) = 1 / (1 +
    expf(-|v|)), taken from one where v < 0, all in float32."""
    one = np.float32(1)
    for r in range(out.shape[0]):
        s = sums[0, r] + base[0]
        for k, v in ((0, -s), (1, s)):
            p = one / (one + math.exp(-abs(v)))
            out[r, k] = one - p if v < 0 else p

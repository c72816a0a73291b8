"""Exact, fast evaluation of an ONNX ``TreeEnsembleClassifier`` with softmax.

It reproduces ONNX Runtime run with one thread bit for bit: trees in
ascending id order, per-class sums in float32, ``base_values`` added after all
trees, then a float32 softmax with the C library's ``expf``, a float32 sum in
class order and a float32 division.  Every tree is padded to a complete tree
of the ensemble's largest depth (a shallow leaf's weight copied to all leaves
below it), so that a traversal is the same fixed number of steps for every
row, without data-dependent branches to mispredict.  Rows are processed in
blocks, trees outer and rows inner, so that a tree stays in cache.

Only graphs this module fully understands are accepted: one
TreeEnsembleClassifier on the graph input with SOFTMAX and three or more
classes, each tree feeding one class, one comparison mode, followed only by
exact no-ops (Identity, Cast to float, Mul by 1).  :func:`compile_ensemble`
returns None for anything else, and the caller uses ONNX Runtime.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np
import onnx
from onnx import numpy_helper

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

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities [N, n_classes], float32."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        out = np.empty((len(x), len(self.base)), np.float32)
        sums = np.zeros((BLOCK, len(self.base)), np.float32)
        for start in range(0, len(x), BLOCK):
            stop = min(start + BLOCK, len(x))
            # The NaN test costs time in the hot loop: only blocks with a NaN
            # take the kernel that has it.
            nan_aware = bool(np.isnan(x[start:stop]).any())
            accumulate = _ACCUMULATE[(self.less_equal, nan_aware)]
            sums[:] = 0
            accumulate(
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
            )
            _softmax(sums, self.base, stop - start, out, start)
        return out


def _attributes(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _exact_no_ops(model: onnx.ModelProto, start: str) -> bool:
    """Whether the last graph output is ``start`` after exact no-ops only."""
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


def compile_ensemble(model: onnx.ModelProto) -> Ensemble | None:
    """The padded ensemble of a supported graph, or None."""
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    inputs = [i.name for i in model.graph.input]
    if len(nodes) != 1 or len(inputs) != 1 or list(nodes[0].input) != inputs:
        return None
    (node,) = nodes
    a = _attributes(node)
    labels = a.get("classlabels_int64s") or a.get("classlabels_strings") or []
    if a.get("post_transform", b"NONE") != b"SOFTMAX" or len(labels) < 3:
        return None
    if not _exact_no_ops(model, node.output[1]):
        return None
    modes = set(a["nodes_modes"]) - {b"LEAF"}
    if len(modes) != 1 or next(iter(modes)) not in (b"BRANCH_LEQ", b"BRANCH_LT"):
        return None
    if "nodes_values_as_tensor" in a or "class_weights_as_tensor" in a:
        return None

    trees: dict[int, dict[int, tuple]] = {}
    missing = a.get("nodes_missing_value_tracks_true") or [0] * len(a["nodes_modes"])
    for tree, nid, mode, feat, value, true, false, miss in zip(
        a["nodes_treeids"],
        a["nodes_nodeids"],
        a["nodes_modes"],
        a["nodes_featureids"],
        a["nodes_values"],
        a["nodes_truenodeids"],
        a["nodes_falsenodeids"],
        missing,
        strict=True,
    ):
        trees.setdefault(tree, {})[nid] = (mode, feat, value, true, false, miss)
    weights: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for tree, nid, cls, weight in zip(
        a["class_treeids"],
        a["class_nodeids"],
        a["class_ids"],
        a["class_weights"],
        strict=True,
    ):
        weights.setdefault((tree, nid), []).append((cls, weight))

    order = sorted(trees)
    tree_class = np.empty(len(order), np.int64)
    for t, tree in enumerate(order):
        classes = {
            c for (tr, _), entries in weights.items() if tr == tree for c, _ in entries
        }
        if len(classes) != 1:
            return None
        tree_class[t] = classes.pop()
        for nid, (mode, *_rest) in trees[tree].items():
            if mode == b"LEAF" and len(weights.get((tree, nid), [])) != 1:
                return None

    def depth_of(tree, nid):
        mode, _, _, true, false, _ = trees[tree][nid]
        if mode == b"LEAF":
            return 0
        return 1 + max(depth_of(tree, true), depth_of(tree, false))

    depth = max(depth_of(tree, 0) for tree in order)
    internal, n_leaves = 2**depth - 1, 2**depth
    feature = np.zeros((len(order), max(internal, 1)), np.int64)
    threshold = np.full((len(order), max(internal, 1)), np.inf, np.float32)
    missing_true = np.ones((len(order), max(internal, 1)), np.bool_)
    leaves = np.zeros((len(order), n_leaves), np.float32)

    def fill(t, tree, nid, position, level):
        mode, feat, value, true, false, miss = trees[tree][nid]
        if mode == b"LEAF":
            ((_, weight),) = weights[(tree, nid)]
            first = position
            for _ in range(depth - level):
                first = 2 * first + 1
            span = 2 ** (depth - level)
            leaves[t, first - internal : first - internal + span] = weight
            return
        feature[t, position] = feat
        threshold[t, position] = value
        missing_true[t, position] = bool(miss)
        fill(t, tree, true, 2 * position + 1, level + 1)
        fill(t, tree, false, 2 * position + 2, level + 1)

    for t, tree in enumerate(order):
        fill(t, tree, 0, 0, 0)
    n_classes = len(labels)
    base = np.asarray(a.get("base_values") or [0.0] * n_classes, np.float32)
    if len(base) != n_classes or tree_class.max() >= n_classes:
        return None
    n_features = int(feature.max()) + 1 if feature.size else 0
    return Ensemble(
        feature,
        threshold,
        missing_true,
        leaves,
        tree_class,
        base,
        depth,
        modes == {b"BRANCH_LEQ"},
        n_features,
    )


LANES = 8
"""Rows traversed together: independent dependency chains for the CPU."""


def _make_kernel(less_equal: bool, nan_aware: bool):
    @numba.njit(cache=True, nogil=True, inline="always")
    def goes_true(v, threshold, missing_true):
        go = v <= threshold if less_equal else v < threshold
        if nan_aware and not go and missing_true and v != v:
            go = True
        return go

    @numba.njit(cache=True, nogil=True)
    def accumulate(
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
    ):
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
                        go = goes_true(v, threshold[t, i], missing_true[t, i])
                        index[lane] = 2 * i + 2 - go
                for lane in range(LANES):
                    sums[r + lane, c] += leaves[t, index[lane] - first_leaf]
            for r in range(full, rows):
                i = 0
                for _ in range(depth):
                    v = x[start + r, feature[t, i]]
                    i = 2 * i + 2 - goes_true(v, threshold[t, i], missing_true[t, i])
                sums[r, c] += leaves[t, i - first_leaf]

    return accumulate


_ACCUMULATE = {
    (leq, nan): _make_kernel(leq, nan) for leq in (True, False) for nan in (True, False)
}


@numba.njit(cache=True, nogil=True)
def _softmax(sums, base, rows, out, start):
    """ONNX Runtime's softmax: float32, C expf, sum in class order."""
    n_classes = base.shape[0]
    values = np.empty(n_classes, np.float32)
    for r in range(rows):
        largest = np.float32(-np.inf)
        for k in range(n_classes):
            values[k] = sums[r, k] + base[k]
            if values[k] > largest:
                largest = values[k]
        total = np.float32(0)
        for k in range(n_classes):
            values[k] = math.exp(values[k] - largest)
            total += values[k]
        for k in range(n_classes):
            out[start + r, k] = values[k] / total

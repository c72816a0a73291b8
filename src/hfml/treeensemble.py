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
            sums[:] = 0
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
    leaves = np.zeros((len(order), 2**depth), np.float32)
    for level, (nodes, places) in enumerate(levels):
        trees_of = tree_index[nodes]
        branch = ~leaf[nodes]
        feature[trees_of[branch], places[branch]] = features[nodes[branch]]
        threshold[trees_of[branch], places[branch]] = values[nodes[branch]]
        missing_true[trees_of[branch], places[branch]] = missing[nodes[branch]]
        # A leaf above the bottom fills every padded leaf below it.
        span = 2 ** (depth - level)
        first = (places[~branch] + 1) * span - 1 - internal
        columns = first[:, None] + np.arange(span)
        leaves[trees_of[~branch][:, None], columns] = weight_of[nodes[~branch]][:, None]
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
                sums[r + lane, c] += leaves[t, index[lane] - first_leaf]
        for r in range(full, rows):
            i = 0
            for _ in range(depth):
                v = x[start + r, feature[t, i]]
                go = v <= threshold[t, i] if less_equal else v < threshold[t, i]
                if nan_aware and not go and missing_true[t, i] and v != v:
                    go = True
                i = 2 * i + 2 - go
            sums[r, c] += leaves[t, i - first_leaf]


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

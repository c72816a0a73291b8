"""The built-in toy sample: Ds+ → KKπ candidates in the O2Physics layout."""

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from hfml.config import pt_bin_labels
from hfml.files import atomic_outputs
from hfml.io import write_o2_file
from hfml.o2 import DEFAULT_TREE, LITE_BRANCHES, McFlag, McOrigin
from hfml.provenance import config_hash
from hfml.toy.generate import SOURCES, ToyFile, generate_file

__all__ = ["SOURCES", "ToyFile", "generate_file", "truth_summary", "write_toy_file"]


def write_toy_file(
    source: str,
    index: int,
    toy: Mapping,
    root_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    generated_path: str | os.PathLike,
) -> ToyFile:
    """Generate one toy file and write it with its truth sidecars, atomically."""
    content = generate_file(source, index, toy)
    metadata = f"hfml toy sample: source={source} file={index} seed={toy['seed']}"
    with atomic_outputs(root_path, truth_path, generated_path) as (root, truth, gen):
        write_o2_file(
            root,
            content.frames,
            DEFAULT_TREE,
            LITE_BRANCHES,
            metadata,
            identity=f"{metadata} settings={config_hash(toy)}",
        )
        content.truth.to_parquet(truth, index=False)
        content.generated.to_parquet(gen, index=False)
    return content


def truth_summary(
    generated_paths: Sequence[str], truth_paths: Sequence[str], edges: Sequence[float]
) -> dict:
    """True counts per pT bin of the toy data: generated D mesons (|y| < 0.5 and
    all generated, |y| < 1) and candidates written to the trees, by true pT."""
    generated = pd.concat([pd.read_parquet(p) for p in generated_paths])
    truth = pd.concat([pd.read_parquet(p) for p in truth_paths])
    kinds = {
        "ds_prompt": (McFlag.DS_TO_KKPI, McOrigin.PROMPT),
        "ds_nonprompt": (McFlag.DS_TO_KKPI, McOrigin.NONPROMPT),
        "dplus_prompt": (McFlag.DPLUS_TO_KKPI, McOrigin.PROMPT),
        "dplus_nonprompt": (McFlag.DPLUS_TO_KKPI, McOrigin.NONPROMPT),
    }
    summary: dict = {}
    for index, label in enumerate(pt_bin_labels(edges)):
        low, high = edges[index], edges[index + 1]
        counts = {}
        for kind, (flag, origin) in kinds.items():
            gen = generated[
                (generated["flag"].abs() == flag)
                & (generated["origin"] == origin)
                & (generated["pt"] >= low)
                & (generated["pt"] < high)
            ]
            rows = truth[
                (truth["flag"].abs() == flag)
                & (truth["origin"] == origin)
                & (truth["pt_true"] >= low)
                & (truth["pt_true"] < high)
            ]
            counts[kind] = {
                "generated_y05": int((gen["y"].abs() < 0.5).sum()),
                "generated": len(gen),
                "in_tree": len(rows),
            }
        summary[label] = counts
    return summary

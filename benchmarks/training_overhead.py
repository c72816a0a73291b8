"""Overhead of the training stage outside the library's fit.

For every pT bin of a configuration, runs in this process what the workflow's
jobs run — building the samples, training, evaluating — and compares the time
spent outside the library's ``fit`` (sampling, saving, evaluation, plotting)
with the time of the fit, both measured in this run.  Needs the merged skim
of a finished run of the same configuration:

    snakemake --cores 2 results/skim/counts.json
    python benchmarks/training_overhead.py [--workdir .] [config.yaml ...]
"""

import argparse
import tempfile
import time
from pathlib import Path

from hfml.cli import load_configs
from hfml.config import pt_bin_labels, repository_root
from hfml.training import evaluate, make_samples, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="*")
    parser.add_argument("--workdir", default=".", help="folder holding results/skim")
    args = parser.parse_args()
    config = load_configs([str(repository_root() / "config/config.yaml"), *args.config])
    skim = Path(args.workdir) / "results" / "skim"
    out = Path(tempfile.mkdtemp(prefix="hfml-overhead-"))
    totals = {"fit": 0.0, "outside": 0.0}
    print(f"{'bin':8} {'samples':>8} {'fit':>8} {'train job':>10} {'evaluate':>9}")
    for ptbin in pt_bin_labels(config["pt_bins"]):
        inputs = {
            c["name"]: skim / c["name"] / f"{ptbin}.parquet" for c in config["classes"]
        }
        paths = {
            k: str(out / f"{ptbin}_{k}")
            for k in ("train", "test", "sample", "model", "info", "metrics")
        }
        start = time.perf_counter()
        make_samples(
            config, ptbin, inputs, paths["train"], paths["test"], paths["sample"]
        )
        sampled = time.perf_counter()
        model = paths["model"] + (
            ".json" if config["training"]["library"] == "xgboost" else ".txt"
        )
        info = train(config, ptbin, paths["train"], model, paths["info"])
        trained = time.perf_counter()
        evaluate(
            config,
            ptbin,
            model,
            paths["train"],
            paths["test"],
            paths["info"],
            paths["sample"],
            paths["metrics"],
            str(out / ptbin),
        )
        evaluated = time.perf_counter()
        fit = info["training_seconds"]
        outside = (sampled - start) + (trained - sampled - fit) + (evaluated - trained)
        totals["fit"] += fit
        totals["outside"] += outside
        print(
            f"{ptbin:8} {sampled - start:8.2f} {fit:8.2f} {trained - sampled:10.2f} "
            f"{evaluated - trained:9.2f}"
        )
    ratio = totals["outside"] / totals["fit"]
    print(
        f"fit {totals['fit']:.1f} s, outside the fit {totals['outside']:.1f} s: "
        f"overhead = {ratio:.0%} of the fit time"
    )


if __name__ == "__main__":
    main()

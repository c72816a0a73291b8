"""The apply job against pure scoring, and its memory against the input size.

Uses the models and a data file of a finished run (default: this folder):
times ``MlResponse.scores`` alone on the file's candidates inside the pT bins
(the best of three passes over the same rows), then whole apply jobs (read,
preselect, score, cut, write) on the file once, 3, 10 and 30 times over, each
in a fresh process and each twice, keeping the faster, and reports the rates
and the peak memory of each job.  From the smallest and the largest job it
derives the job's fixed start-up cost (loading the models, with checked
ensembles already cached, and the evaluator's compiled kernels) and its rate
per further candidate.  A toy file holds about 200,000 candidates (28 MB),
of which a job scores about 42,000: the others are reserved for training or
outside the pT bins.  The largest job, 30 files (about 850 MB and 6 million
candidates), is the size of one real file of derived data; the fixed cost
weighs on small jobs, so raise ``apply.files_per_job`` when files are small.

    snakemake --cores 2
    python benchmarks/apply_job.py [--workdir .] [config.yaml ...]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hfml.apply import model_features, response
from hfml.cli import load_configs
from hfml.config import pt_bin_labels, repository_root
from hfml.io import iterate
from hfml.workflow import input_table

JOB = """
import json, resource, sys, time
from hfml.apply import apply_files
config, paths, models, out = json.loads(sys.argv[1])
start = time.perf_counter()
counts = apply_files(config, paths, models, out + ".parquet", out + ".json")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024,
                  "scored": sum(b["candidates"] for b in counts["bins"].values())}))
"""

COPIES = (1, 3, 10, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="*")
    parser.add_argument("--workdir", default=".")
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    config = load_configs([str(repository_root() / "config/config.yaml"), *args.config])
    models = [
        str(workdir / "results/models" / b / "model.onnx")
        for b in pt_bin_labels(config["pt_bins"])
    ]
    data = str(workdir / next(iter(input_table(config)["data"].values())))

    ml = response(config, models)
    features = model_features(config)
    frames = list(iterate(data, config["inputs"]["tree"], [*features, "fPt"], 10**7))
    frame = frames[0].query(config["preselection"] or "fPt == fPt")
    x, pt = frame[features].to_numpy(np.float32), frame["fPt"].to_numpy()
    inside = int(np.sum(ml.bin_index(pt) >= 0))
    ml.scores(x[:1000], pt[:1000])
    scoring = inside / min(_timed(ml.scores, x, pt) for _ in range(3))
    print(f"pure scoring: {scoring:,.0f} candidates/s ({inside} in the pT bins)")

    out = Path(tempfile.mkdtemp(prefix="hfml-apply-"))
    jobs = {}
    size = Path(data).stat().st_size / 2**20
    for copies in COPIES:
        job = json.dumps([config, [data] * copies, models, str(out / f"x{copies}")])
        result = min((_job(job) for _ in range(2)), key=lambda r: r["seconds"])
        jobs[copies] = result
        rate = result["scored"] / result["seconds"]
        print(
            f"apply job, {copies} x the file ({copies * size:.0f} MB): "
            f"{rate:,.0f} candidates/s ({rate / scoring:.2f}x pure scoring, model "
            f"loading included), peak memory {result['peak_mb']:.0f} MB"
        )
    small, large = jobs[COPIES[0]], jobs[COPIES[-1]]
    marginal = (large["scored"] - small["scored"]) / (
        large["seconds"] - small["seconds"]
    )
    fixed = small["seconds"] - small["scored"] / marginal
    print(
        f"apply job, per further candidate: {marginal:,.0f} candidates/s "
        f"({marginal / scoring:.2f}x pure scoring); fixed start-up {fixed:.2f} s"
    )
    rate = large["scored"] / large["seconds"] / scoring
    growth = large["peak_mb"] - small["peak_mb"]
    print(
        f"largest job: {rate:.2f}x pure scoring (target 0.8x: "
        f"{'met' if rate >= 0.8 else 'missed'}); peak memory "
        f"{growth:+.0f} MB for {COPIES[-1] // COPIES[0]}x the input"
    )


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _job(job: str) -> dict:
    command = [sys.executable, "-c", JOB, job]
    return json.loads(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout
    )


if __name__ == "__main__":
    main()

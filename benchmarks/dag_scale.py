"""How long Snakemake takes to plan the workflow for a data set of many files.

Writes ``--files`` data files and a few MC files listed in two file lists, as
from a Grid catalogue: the first file of each source is a small toy file
(the configuration check reads its branches), the others are empty
placeholders, which a dry run never opens.  Then times ``snakemake -n`` (DAG
building and job planning) on them with the default configuration and
``skim.files_per_job`` and ``apply.files_per_job`` from the command line.

    python benchmarks/dag_scale.py [--files 10000] [--files-per-job 10]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hfml.cli import load_configs
from hfml.config import repository_root
from hfml.toy import write_toy_file


def placeholders(folder: Path, source: str, n: int, toy: dict) -> Path:
    """``n`` files of ``source`` under ``folder`` and the list naming them."""
    paths = [folder / source / f"{i:06d}" / "AO2D.root" for i in range(n)]
    for path in paths:
        path.parent.mkdir(parents=True)
    sidecars = folder / "sidecars" / source
    write_toy_file(
        source, 0, toy, paths[0], sidecars / "truth.parquet", sidecars / "gen.parquet"
    )
    for path in paths[1:]:
        path.touch()
    listing = folder / f"{source}.txt"
    listing.write_text("".join(f"{p.relative_to(folder)}\n" for p in paths))
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mc-files", type=int, default=20)
    parser.add_argument("--files-per-job", type=int, default=10)
    args = parser.parse_args()
    repository = repository_root()
    config = load_configs([str(repository / "config/config.yaml")])
    toy = config["inputs"]["toy"] | {
        "data": config["inputs"]["toy"]["data"] | {"background_per_file": 2000},
        "mc": config["inputs"]["toy"]["mc"] | {"ds_per_file": 2000},
    }
    folder = Path(tempfile.mkdtemp(prefix="hfml-dag-"))
    try:
        start = time.perf_counter()
        data = placeholders(folder, "data", args.files, toy)
        mc = placeholders(folder, "mc", args.mc_files, toy)
        print(
            f"wrote {args.files} data and {args.mc_files} MC files in "
            f"{time.perf_counter() - start:.1f} s"
        )
        override = folder / "inputs.yaml"
        override.write_text(
            f"inputs:\n  toy: {{enabled: false}}\n  data: [{data}]\n  mc: [{mc}]\n"
            f"skim: {{files_per_job: {args.files_per_job}}}\n"
            f"apply: {{files_per_job: {args.files_per_job}}}\n"
        )
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(repository / "Snakefile"),
            "--directory",
            str(folder / "run"),
            "--configfile",
            str(repository / "config/config.yaml"),
            str(override),
            "--cores",
            "2",
            "-n",
            "--quiet",
            "rules",
        ]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode:
            sys.exit(f"snakemake -n failed:\n{result.stdout}\n{result.stderr}")
        print(result.stdout.strip()[-2000:])
        print(
            f"snakemake -n on {args.files} data files "
            f"({args.files_per_job} per skim and per apply job): {seconds:.1f} s"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

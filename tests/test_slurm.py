"""The workflow through a real Slurm cluster, with accounting.

``.ci/slurm-cluster start`` brings up a single-node cluster (munge, MariaDB,
slurmdbd, slurmctld, slurmd).  Without a cluster these tests are skipped,
unless ``HFML_REQUIRE_SLURM=1`` (set by CI), where a missing cluster fails.
"""

import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.test_workflow import CONFIGS, snakemake

SLURM = [str(REPO / "profiles" / "slurm")]
# The executor plugin waits 40 s before its first status check by default.
FAST = ["--slurm-init-seconds-before-status-checks", "2"]
TARGETS = ["results/skim/counts.json", "results/skim/prompt/pt2_4.parquet"]


@pytest.fixture(scope="module")
def cluster():
    up = shutil.which("sinfo") and (
        subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    )
    if not up:
        message = "no Slurm cluster (start one with .ci/slurm-cluster start)"
        if os.environ.get("HFML_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def slurm_jobs(output: str) -> list[str]:
    """Slurm job ids of the jobs Snakemake submitted, from its log."""
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def accounting(ids: list[str]) -> list[str]:
    """States of the jobs in Slurm's accounting database."""
    result = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def assert_same_results(local, remote) -> None:
    """The outputs of TARGETS are the same in two working directories."""
    counts = "results/skim/counts.json"
    assert json.loads((remote / counts).read_text()) == json.loads(
        (local / counts).read_text()
    )
    merged = "results/skim/prompt/pt2_4.parquet"
    pd.testing.assert_frame_equal(
        pd.read_parquet(remote / merged), pd.read_parquet(local / merged)
    )


@pytest.mark.slurm
@pytest.mark.workflow
def test_jobs_run_through_slurm_and_give_the_local_results(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    snakemake(local, *TARGETS)
    result = snakemake(remote, "--profile", *SLURM, *FAST, *TARGETS)
    ids = slurm_jobs(result.stdout + result.stderr)
    # Three toy files, their three skims, one merge and the counts.
    assert len(ids) == 8
    assert accounting(ids) == ["COMPLETED"] * len(ids)
    assert_same_results(local, remote)


@pytest.mark.slurm
@pytest.mark.workflow
def test_a_failing_job_is_reported_failed_and_retried(cluster, tmp_path):
    # Real inputs: a data and an MC toy file, and a truncated data file.
    toy = tmp_path / "toy"
    snakemake(toy, "results/toy/data/000/AO2D.root", "results/toy/mc/000/AO2D.root")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(toy / "results/toy/data/000/AO2D.root", inputs / "a.root")
    shutil.copy(toy / "results/toy/mc/000/AO2D.root", inputs / "mc.root")
    good = (inputs / "a.root").read_bytes()
    (inputs / "b.root").write_bytes(good[: len(good) // 2])
    override = tmp_path / "inputs.yaml"
    override.write_text(
        f"inputs:\n  toy: {{enabled: false}}\n  data: ['{inputs}/[ab].root']\n"
        f"  mc: ['{inputs}/mc.root']\n"
    )
    work = tmp_path / "work"
    result = snakemake(
        work,
        "--profile",
        *SLURM,
        *FAST,
        "results/skim/counts.json",
        check=False,
        configs=[*CONFIGS, str(override)],
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule skim_data" in output
    assert "is truncated" in output
    ids = slurm_jobs(output)
    states = dict(zip(ids, accounting(ids), strict=True))
    # The profile retries once: the bad file's skim failed twice in Slurm.
    assert list(states.values()).count("FAILED") == 2
    assert not (work / "results/skim/counts.json").exists()

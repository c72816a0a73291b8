"""The workflow through HTCondor's executor plugin, against a stand-in schedd.

No HTCondor daemons can run here: ``tests/htcondor_standin.py`` replaces the
bindings' ``Schedd`` with one that records each submit description, runs the
job locally and writes HTCondor user-log events, which the real plugin reads.
What is tested is therefore the profile, the submit descriptions and the
plugin's handling of the events, not HTCondor's scheduling.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_slurm import TARGETS, assert_same_results
from tests.test_workflow import CONFIGS, snakemake

if importlib.util.find_spec("snakemake_executor_plugin_htcondor") is None:
    pytest.skip(
        'needs the HTCondor executor plugin (pip install -e ".[htcondor]")',
        allow_module_level=True,
    )


@pytest.mark.workflow
def test_jobs_run_through_the_htcondor_plugin_with_their_resources(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "condor"
    snakemake(local, *TARGETS)
    records = tmp_path / "submitted"
    command = [
        sys.executable,
        str(REPO / "tests" / "htcondor_standin.py"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(remote),
        "--configfile",
        *CONFIGS,
        "--profile",
        str(REPO / "profiles" / "htcondor"),
        *TARGETS,
    ]
    environment = {
        **os.environ,
        "HFML_CONDOR_RECORDS": str(records),
        "CONDOR_CONFIG": os.devnull,
    }
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr

    submitted = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    # Three toy files, their three skims, one merge and the counts.
    assert len(submitted) == 8
    memory = {"toy": "2000MB", "skim_data": "2000MB", "skim_mc": "2000MB"}
    memory |= {"merge_skim": "2000MB", "skim_counts": "500MB"}
    duration = {"toy": "600", "skim_data": "1800", "skim_mc": "1800"}
    duration |= {"merge_skim": "600", "skim_counts": "300"}
    for description in submitted:
        rule = description["batch_name"].rsplit("-", 1)[0]
        assert description["request_memory"] == memory[rule]
        assert description["allowed_execute_duration"] == duration[rule]
        assert description["getenv"] == "True"
    events = (remote / ".snakemake/htcondor/snakemake-rules.log").read_text()
    assert events.count("Normal termination (return value 0)") == 8

    assert_same_results(local, remote)

"""Snakemake with HTCondor's executor plugin against a local stand-in schedd.

No HTCondor daemons can be installed here, so this replaces the bindings'
``htcondor2.Schedd`` before Snakemake starts.  The stand-in records every
submit description as JSON in ``$HFML_CONDOR_RECORDS``, runs each job on
this machine (its executable and arguments, in the submitting directory,
with the submit description's environment on top of this process's), and
writes HTCondor user-log events (submitted, executing, terminated with the
job's return value) to the log file of the description, which the plugin
reads with the bindings' ``JobEventLog``.

    python tests/htcondor_standin.py <snakemake arguments>
"""

import itertools
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import htcondor2

HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618>"
TERMINATED = """\
\t(1) Normal termination (return value {code})
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage
\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage
\t0  -  Run Bytes Sent By Job
\t0  -  Run Bytes Received By Job
\t0  -  Total Bytes Sent By Job
\t0  -  Total Bytes Received By Job
"""


class SubmitResult:
    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster

    def num_procs(self) -> int:
        return 1


class StandInSchedd:
    """Takes submissions like a schedd and runs them at once, locally."""

    _clusters = itertools.count(1)
    _log_lock = threading.Lock()

    def __init__(self, *args, **kwargs) -> None:
        pass

    def submit(self, description, count=0, spool=False, **kwargs) -> SubmitResult:
        cluster = next(self._clusters)
        submit = {key: str(value) for key, value in dict(description).items()}
        records = Path(os.environ["HFML_CONDOR_RECORDS"])
        records.mkdir(parents=True, exist_ok=True)
        (records / f"{cluster}.json").write_text(json.dumps(submit, indent=1))
        self._event(submit["log"], 0, cluster, f"Job submitted from host: {HOST}")
        threading.Thread(target=self._run, args=(cluster, submit)).start()
        return SubmitResult(cluster)

    def _run(self, cluster: int, submit: dict) -> None:
        def expand(text: str) -> str:
            return text.replace("$(ClusterId)", str(cluster)).replace(
                "$(Cluster)", str(cluster)
            )

        environment = dict(os.environ)
        for assignment in shlex.split(submit.get("environment", "")):
            name, _, value = assignment.partition("=")
            environment[name] = value
        command = [submit["executable"], *shlex.split(submit.get("arguments", ""))]
        self._event(submit["log"], 1, cluster, f"Job executing on host: {HOST}")
        with (
            open(expand(submit["output"]), "w") as out,
            open(expand(submit["error"]), "w") as err,
        ):
            code = subprocess.run(
                command, stdout=out, stderr=err, env=environment
            ).returncode
        self._event(
            submit["log"],
            5,
            cluster,
            "Job terminated.\n" + TERMINATED.format(code=code).rstrip("\n"),
        )

    def _event(self, log: str, number: int, cluster: int, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._log_lock, open(log, "a") as stream:
            stream.write(f"{number:03d} ({cluster:03d}.000.000) {stamp} {text}\n...\n")

    def query(self, *args, **kwargs) -> list:
        return []

    def history(self, *args, **kwargs) -> list:
        return []

    def act(self, *args, **kwargs) -> None:
        pass


htcondor2.Schedd = StandInSchedd

if __name__ == "__main__":
    from snakemake.cli import main

    sys.argv = ["snakemake", *sys.argv[1:]]
    main()

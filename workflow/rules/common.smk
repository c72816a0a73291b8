import os
from pathlib import Path

from hfml import config as hfml_config
from hfml.config import SOURCES, class_names, pt_bin_labels
from hfml.models import MODEL_FILE
from hfml.skim import finite_columns
from hfml.workflow import (
    EVALUATION_PLOTS,
    FILE_ID,
    GROUP_ID,
    alternatives,
    apply_groups,
    input_table,
    sections,
    skim_groups,
    skim_keys,
)

hfml_config.validate(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)

# Jobs find the library even in a conda environment without hfml installed.
_SRC = str(Path(workflow.basedir) / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_SRC, os.environ.get("PYTHONPATH")) if p
)


envvars:
    "PYTHONPATH",


INPUTS = input_table(config)
APPLY_GROUPS = apply_groups(INPUTS["data"], config["apply"]["files_per_job"])
SKIM_GROUPS = {
    source: skim_groups(INPUTS[source], config["skim"]["files_per_job"])
    for source in SOURCES
}
PT_BINS = pt_bin_labels(config["pt_bins"])
CLASSES = class_names(config)
SOURCE_OF = {c["name"]: c["source"] for c in config["classes"]}


wildcard_constraints:
    source=alternatives(SOURCES),
    cls=alternatives(CLASSES),
    ptbin=alternatives(PT_BINS),


def skim_outputs(source):
    return [
        f"results/skim/files/{source}/{{file}}/{cls}/{ptbin}.parquet"
        for cls, ptbin in skim_keys(config, source)
    ]


def final_outputs():
    outputs = expand("results/skim/{cls}/{ptbin}.parquet", cls=CLASSES, ptbin=PT_BINS)
    outputs.append("results/skim/counts.json")
    outputs += expand("results/models/{ptbin}/metrics.json", ptbin=PT_BINS)
    outputs += ["results/o2physics/dpl-config.json", "results/apply/counts.json"]
    outputs += ["results/efficiency/efficiency.png", "results/summary.json"]
    outputs += expand("results/fits/{ptbin}/fit.json", ptbin=PT_BINS)
    if config["inputs"]["toy"]["enabled"]:
        outputs.append("results/toy/truth_summary.json")
    return outputs


def closure_table(wildcards):
    """The toy's closure table goes into the summary; real data has none."""
    if config["inputs"]["toy"]["enabled"]:
        return {"closure": "results/closure/closure.json"}
    return {}


TRAINING_CONFIG = ("pt_bins", "classes", "features", "training")
# Every section a model depends on, upstream ones included: the hash that its
# provenance and its ONNX file record.
MODEL_CONFIG = (
    *TRAINING_CONFIG,
    "inputs",
    "preselection",
    "skim",
    *(["optuna"] if config["optuna"]["enabled"] else []),
)
MODEL = f"results/models/{{ptbin}}/{MODEL_FILE[config['training']['library']]}"


def skimmed_classes(wildcards):
    return {c: f"results/skim/{c}/{wildcards.ptbin}.parquet" for c in CLASSES}


def optimised_scans(wildcards):
    """The cuts table waits for the scans only when they choose the cuts."""
    if config["selection"]["cuts"] == "optimise":
        return expand("results/working_point/{ptbin}/scan.json", ptbin=PT_BINS)
    return []


def job_resources(mem_mb, runtime):
    """Memory (MB) and run time (minutes) of a job, also under the names
    HTCondor's executor reads (it ignores mem_mb and runtime)."""
    return {
        "mem_mb": mem_mb,
        "runtime": runtime,
        "htcondor_request_mem_mb": mem_mb,
        "allowed_execute_duration": runtime * 60,
    }


def rule_resources(name):
    """The resources of a job whose needs grow with the data, from config."""
    return job_resources(**config["resources"][name])


def tuned_parameters(wildcards):
    if config["optuna"]["enabled"]:
        return {"best": f"results/models/{wildcards.ptbin}/best_params.json"}
    return {}

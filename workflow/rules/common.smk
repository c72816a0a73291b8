import os
from pathlib import Path

from hfml import config as hfml_config
from hfml.config import SOURCES, class_names, pt_bin_labels
from hfml.workflow import alternatives, input_table, skim_keys

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
    if config["inputs"]["toy"]["enabled"]:
        outputs.append("results/toy/truth_summary.json")
    return outputs

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/skim.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/apply.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        final_outputs(),

from hfml.logs import job_logging
from hfml.provenance import record, skim_inputs
from hfml.summary import summarise

with job_logging(snakemake.log[0]):
    summarise(
        snakemake.params.config,
        list(snakemake.input.samples),
        list(snakemake.input.metrics),
        list(snakemake.input.efficiencies),
        list(snakemake.input.fits),
        list(snakemake.input.scans),
        snakemake.output.summary,
        snakemake.output.table,
        snakemake.input.get("closure"),
        record(snakemake.params.analysis, skim_inputs(snakemake.input.inputs)),
    )

from hfml.logs import job_logging
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
    )

from hfml.logs import job_logging
from hfml.training import train

with job_logging(snakemake.log[0]):
    train(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.train,
        snakemake.output.model,
        snakemake.output.info,
        snakemake.input.get("best"),
    )

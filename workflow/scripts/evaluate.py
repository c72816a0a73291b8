from pathlib import Path

from hfml.logs import job_logging
from hfml.training import evaluate

with job_logging(snakemake.log[0]):
    evaluate(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.model,
        snakemake.input.train,
        snakemake.input.test,
        snakemake.input.info,
        snakemake.input.summary,
        snakemake.output.metrics,
        str(Path(snakemake.output.plots[0]).parent),
    )

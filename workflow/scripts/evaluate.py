from pathlib import Path

from hfml.logs import job_logging
from hfml.training import evaluate
from hfml.workflow import with_threads

with job_logging(snakemake.log[0]):
    evaluate(
        with_threads(snakemake.params.config, snakemake.threads),
        snakemake.wildcards.ptbin,
        snakemake.input.model,
        snakemake.input.train,
        snakemake.input.test,
        snakemake.input.info,
        snakemake.input.summary,
        snakemake.output.metrics,
        str(Path(snakemake.output.plots[0]).parent),
    )

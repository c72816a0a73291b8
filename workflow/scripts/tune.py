from pathlib import Path

from hfml.logs import job_logging
from hfml.tuning import best_parameters

with job_logging(snakemake.log[0]):
    best_parameters(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.train,
        snakemake.params.journal,
        snakemake.output.best,
        str(Path(snakemake.output.history).parent),
    )

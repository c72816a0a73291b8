from hfml.logs import job_logging
from hfml.tuning import run_worker

with job_logging(snakemake.log[0]):
    run_worker(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.train,
        snakemake.params.journal,
        int(snakemake.wildcards.worker),
        snakemake.output[0],
    )

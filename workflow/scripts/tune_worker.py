from hfml.logs import job_logging
from hfml.tuning import run_worker
from hfml.workflow import with_threads

with job_logging(snakemake.log[0]):
    run_worker(
        with_threads(snakemake.params.config, snakemake.threads),
        snakemake.wildcards.ptbin,
        snakemake.input.train,
        snakemake.params.journal,
        int(snakemake.wildcards.worker),
        snakemake.output[0],
    )

from hfml.logs import job_logging
from hfml.workingpoint import collect_bin

with job_logging(snakemake.log[0]):
    collect_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        list(snakemake.input),
        snakemake.output[0],
    )

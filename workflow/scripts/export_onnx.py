from hfml.export import export_bin
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    export_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.model,
        snakemake.input.info,
        snakemake.output[0],
    )

from hfml.logs import job_logging
from hfml.skim import merge

with job_logging(snakemake.log[0]) as log:
    rows = merge(snakemake.input, snakemake.output[0])
    log.info(
        "merged %d files into %s: %d candidates",
        len(snakemake.input),
        snakemake.output[0],
        rows,
    )

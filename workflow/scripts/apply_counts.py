from hfml.apply import sum_counts
from hfml.files import write_json
from hfml.logs import job_logging

with job_logging(snakemake.log[0]) as log:
    total = sum_counts(snakemake.input)
    write_json(snakemake.output[0], total)
    log.info("applied to %d files: %s", total["files"], total["bins"])

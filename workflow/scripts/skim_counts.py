from hfml.files import write_json
from hfml.logs import job_logging
from hfml.skim import sum_counts

with job_logging(snakemake.log[0]) as log:
    total = sum_counts(snakemake.input, snakemake.params.config)
    write_json(snakemake.output[0], total)
    for name, bins in total["classes"].items():
        for ptbin, counts in bins.items():
            log.info("class %s, %s: %d candidates", name, ptbin, counts["selected"])

from hfml.files import write_json
from hfml.logs import job_logging
from hfml.toy import truth_summary

with job_logging(snakemake.log[0]) as log:
    summary = truth_summary(
        snakemake.input.generated, snakemake.input.truth, snakemake.params.pt_bins
    )
    write_json(snakemake.output[0], summary)
    log.info("true counts of the toy data per pT bin: %s", summary)

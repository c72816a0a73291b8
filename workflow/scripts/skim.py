from hfml.logs import job_logging
from hfml.skim import skim_files

with job_logging(snakemake.log[0]):
    outputs = dict(
        zip(map(tuple, snakemake.params.outputs), snakemake.output.samples, strict=True)
    )
    skim_files(
        list(snakemake.input),
        snakemake.params.source,
        snakemake.params.config,
        outputs,
        snakemake.output.counts,
        snakemake.params.finite,
    )

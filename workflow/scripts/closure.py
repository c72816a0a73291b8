from hfml.closure import closure
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    closure(
        snakemake.params.config,
        list(snakemake.input.data),
        list(snakemake.input.candidates),
        snakemake.input.cuts,
        list(snakemake.input.fits),
        list(snakemake.input.efficiencies),
        snakemake.output.table,
        snakemake.output.plot,
    )

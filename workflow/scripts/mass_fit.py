from hfml.logs import job_logging
from hfml.massfit import fit_bin

with job_logging(snakemake.log[0]):
    fit_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.candidates,
        snakemake.input.cuts,
        snakemake.input.test,
        snakemake.output.fit,
        snakemake.output.plot,
        snakemake.output.root,
    )

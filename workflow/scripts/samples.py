from hfml.logs import job_logging
from hfml.training import make_samples

with job_logging(snakemake.log[0]):
    config = snakemake.params.config
    make_samples(
        config,
        snakemake.wildcards.ptbin,
        {c["name"]: snakemake.input[c["name"]] for c in config["classes"]},
        snakemake.output.train,
        snakemake.output.test,
        snakemake.output.summary,
    )

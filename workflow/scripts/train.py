from hfml.logs import job_logging
from hfml.provenance import record, skim_inputs
from hfml.training import train
from hfml.workflow import with_threads

with job_logging(snakemake.log[0]):
    train(
        with_threads(snakemake.params.config, snakemake.threads),
        snakemake.wildcards.ptbin,
        snakemake.input.train,
        snakemake.output.model,
        snakemake.output.info,
        snakemake.input.get("best"),
        record(snakemake.params.provenance, skim_inputs(snakemake.input.inputs)),
    )

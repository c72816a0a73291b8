from hfml.efficiency import efficiency_bin
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    efficiency_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.test,
        snakemake.input.onnx,
        snakemake.input.skim_counts,
        snakemake.input.cuts,
        snakemake.output[0],
    )

from hfml.export import validate_bin
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    validate_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.model,
        snakemake.input.onnx,
        snakemake.input.info,
        snakemake.input.test,
        snakemake.output[0],
    )

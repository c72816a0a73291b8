from hfml.logs import job_logging
from hfml.workingpoint import working_point_bin

with job_logging(snakemake.log[0]):
    working_point_bin(
        snakemake.params.config,
        snakemake.wildcards.ptbin,
        snakemake.input.candidates,
        snakemake.input.test,
        snakemake.input.onnx,
        snakemake.input.model,
        snakemake.output.scan,
        snakemake.output.map,
        snakemake.output.curve,
    )

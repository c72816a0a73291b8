from hfml.apply import apply_files
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    apply_files(
        snakemake.params.config,
        list(snakemake.input.data),
        list(snakemake.input.onnx),
        snakemake.output.candidates,
        snakemake.output.counts,
    )

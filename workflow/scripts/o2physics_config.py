from hfml.apply import model_features
from hfml.export import write_o2physics
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    config = snakemake.params.config
    write_o2physics(
        config,
        snakemake.input.onnx,
        model_features(config),
        snakemake.input.cuts,
        snakemake.output.dpl,
        snakemake.output.uploads,
    )

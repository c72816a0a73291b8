from hfml.logs import job_logging
from hfml.workingpoint import write_cuts

with job_logging(snakemake.log[0]):
    write_cuts(snakemake.params.config, list(snakemake.input), snakemake.output[0])

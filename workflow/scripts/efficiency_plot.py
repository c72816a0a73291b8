from hfml.efficiency import plot_efficiencies
from hfml.logs import job_logging

with job_logging(snakemake.log[0]):
    plot_efficiencies(
        snakemake.params.config, list(snakemake.input), snakemake.output[0]
    )

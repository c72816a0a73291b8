from hfml.logs import job_logging
from hfml.toy import write_toy_file

with job_logging(snakemake.log[0]) as log:
    content = write_toy_file(
        snakemake.wildcards.source,
        int(snakemake.wildcards.index),
        snakemake.params.toy,
        snakemake.output.root,
        snakemake.output.truth,
        snakemake.output.generated,
    )
    log.info(
        "wrote %d candidates in %d DF_ folders to %s",
        len(content.truth),
        len(content.frames),
        snakemake.output.root,
    )

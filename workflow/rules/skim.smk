for _source in SOURCES:

    rule:
        name:
            f"skim_{_source}"
        input:
            lambda wildcards, source=_source: SKIM_GROUPS[source][wildcards.file],
        output:
            samples=skim_outputs(_source),
            counts=f"results/skim/files/{_source}/{{file}}/counts.json",
        log:
            f"logs/skim/{_source}/{{file}}.log",
        wildcard_constraints:
            file=f"{FILE_ID}|{GROUP_ID}",
        conda:
            "../../envs/hfml.yaml"
        resources:
            **rule_resources("skim"),
        params:
            source=_source,
            outputs=skim_keys(config, _source),
            finite=finite_columns(config),
            config=sections(
                config,
                "inputs",
                "preselection",
                "pt_bins",
                "classes",
                "features",
                "skim",
            ),
        script:
            "../scripts/skim.py"


rule merge_skim:
    input:
        lambda wildcards: expand(
            "results/skim/files/{source}/{file}/{cls}/{ptbin}.parquet",
            source=SOURCE_OF[wildcards.cls],
            file=SKIM_GROUPS[SOURCE_OF[wildcards.cls]],
            allow_missing=True,
        ),
    output:
        "results/skim/{cls}/{ptbin}.parquet",
    log:
        "logs/skim/merge/{cls}/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("merge_skim"),
    script:
        "../scripts/merge_skim.py"


rule skim_counts:
    input:
        [
            f"results/skim/files/{source}/{file}/counts.json"
            for source in SOURCES
            for file in SKIM_GROUPS[source]
        ],
    output:
        "results/skim/counts.json",
    log:
        "logs/skim/counts.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=500, runtime=5),
    params:
        config=sections(config, "pt_bins", "classes"),
    script:
        "../scripts/skim_counts.py"

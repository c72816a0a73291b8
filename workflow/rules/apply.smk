rule export_onnx:
    input:
        model=MODEL,
        info="results/models/{ptbin}/training.json",
    output:
        "results/models/{ptbin}/model.onnx",
    log:
        "logs/export/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=2000, runtime=10),
    params:
        config=sections(config, *MODEL_CONFIG),
    script:
        "../scripts/export_onnx.py"


rule validate_onnx:
    input:
        model=MODEL,
        onnx="results/models/{ptbin}/model.onnx",
        info="results/models/{ptbin}/training.json",
        test="results/samples/{ptbin}/test.parquet",
    output:
        "results/models/{ptbin}/onnx_validation.json",
    log:
        "logs/export/{ptbin}_validation.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=4000, runtime=20),
    params:
        config=sections(config, *TRAINING_CONFIG, "selection", "apply", "export"),
    script:
        "../scripts/validate_onnx.py"


rule o2physics_config:
    input:
        onnx=expand("results/models/{ptbin}/model.onnx", ptbin=PT_BINS),
        validation=expand("results/models/{ptbin}/onnx_validation.json", ptbin=PT_BINS),
        cuts="results/working_point/cuts.json",
    output:
        dpl="results/o2physics/dpl-config.json",
        uploads="results/o2physics/ccdb_uploads.tsv",
    log:
        "logs/export/o2physics.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=500, runtime=5),
    params:
        config=sections(config, *TRAINING_CONFIG, "selection"),
    script:
        "../scripts/o2physics_config.py"


rule apply:
    input:
        data=lambda wildcards: APPLY_GROUPS[wildcards.group],
        onnx=expand("results/models/{ptbin}/model.onnx", ptbin=PT_BINS),
        validation=expand("results/models/{ptbin}/onnx_validation.json", ptbin=PT_BINS),
    output:
        candidates="results/apply/{group}.parquet",
        counts="results/apply/{group}.json",
    log:
        "logs/apply/{group}.log",
    wildcard_constraints:
        group=GROUP_ID,
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("apply"),
    params:
        config=sections(
            config,
            *TRAINING_CONFIG,
            "inputs",
            "preselection",
            "selection",
            "apply",
        ),
    script:
        "../scripts/apply.py"


rule apply_counts:
    input:
        expand("results/apply/{group}.json", group=APPLY_GROUPS),
    output:
        "results/apply/counts.json",
    log:
        "logs/apply/counts.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=500, runtime=5),
    script:
        "../scripts/apply_counts.py"

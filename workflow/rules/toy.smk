rule toy:
    output:
        root="results/toy/{source}/{index}/AO2D.root",
        truth="results/toy/{source}/{index}/truth.parquet",
        generated="results/toy/{source}/{index}/generated.parquet",
    log:
        "logs/toy/{source}/{index}.log",
    wildcard_constraints:
        index=r"\d{3}",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("toy"),
    params:
        toy=config["inputs"]["toy"],
    script:
        "../scripts/toy.py"


rule toy_truth_summary:
    input:
        generated=expand(
            "results/toy/data/{index:03d}/generated.parquet",
            index=range(config["inputs"]["toy"]["data"]["files"]),
        ),
        truth=expand(
            "results/toy/data/{index:03d}/truth.parquet",
            index=range(config["inputs"]["toy"]["data"]["files"]),
        ),
    output:
        "results/toy/truth_summary.json",
    log:
        "logs/toy/truth_summary.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=2000, runtime=5),
    params:
        pt_bins=config["pt_bins"],
    script:
        "../scripts/toy_truth_summary.py"

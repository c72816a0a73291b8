rule samples:
    input:
        unpack(skimmed_classes),
    output:
        train="results/samples/{ptbin}/train.parquet",
        test="results/samples/{ptbin}/test.parquet",
        summary="results/samples/{ptbin}/sample.json",
    log:
        "logs/samples/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("samples"),
    params:
        config=sections(config, *TRAINING_CONFIG),
    script:
        "../scripts/samples.py"


rule tune_worker:
    input:
        train="results/samples/{ptbin}/train.parquet",
    output:
        "results/optuna/{ptbin}/worker{worker}.json",
    log:
        "logs/optuna/{ptbin}/worker{worker}.log",
    conda:
        "../../envs/hfml.yaml"
    threads: config["training"]["threads"]
    resources:
        **rule_resources("tune"),
    params:
        journal="results/optuna/{ptbin}/study.journal",
        config=sections(config, *TRAINING_CONFIG, "optuna"),
    script:
        "../scripts/tune_worker.py"


rule tune:
    input:
        train="results/samples/{ptbin}/train.parquet",
        workers=expand(
            "results/optuna/{{ptbin}}/worker{worker}.json",
            worker=range(config["optuna"]["workers"]),
        ),
    output:
        best="results/models/{ptbin}/best_params.json",
        history=report(
            "results/models/{ptbin}/plots/optuna_history.png",
            caption="../report/optuna.rst",
            category="1. Training",
            subcategory="{ptbin}",
            labels={"bin": "{ptbin}", "figure": "Optuna history"},
        ),
        importance=report(
            "results/models/{ptbin}/plots/optuna_importance.png",
            caption="../report/optuna.rst",
            category="1. Training",
            subcategory="{ptbin}",
            labels={"bin": "{ptbin}", "figure": "Optuna importances"},
        ),
    log:
        "logs/optuna/{ptbin}/best.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    params:
        journal="results/optuna/{ptbin}/study.journal",
        config=sections(config, *TRAINING_CONFIG, "optuna"),
    script:
        "../scripts/tune.py"


rule train:
    input:
        unpack(tuned_parameters),
        train="results/samples/{ptbin}/train.parquet",
        inputs="results/skim/counts.json",
    output:
        model=MODEL,
        info="results/models/{ptbin}/training.json",
    log:
        "logs/train/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    threads: config["training"]["threads"]
    resources:
        **rule_resources("train"),
    params:
        config=sections(config, *TRAINING_CONFIG),
        provenance=sections(config, *MODEL_CONFIG),
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        model=MODEL,
        info="results/models/{ptbin}/training.json",
        train="results/samples/{ptbin}/train.parquet",
        test="results/samples/{ptbin}/test.parquet",
        summary="results/samples/{ptbin}/sample.json",
    output:
        metrics="results/models/{ptbin}/metrics.json",
        plots=[
            report(
                f"results/models/{{ptbin}}/plots/{name}.png",
                caption=f"../report/{name}.rst",
                category="1. Training",
                subcategory="{ptbin}",
                labels={"bin": "{ptbin}", "figure": name.replace("_", " ")},
            )
            for name in EVALUATION_PLOTS
        ],
    log:
        "logs/evaluate/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    threads: config["training"]["threads"]
    resources:
        **rule_resources("evaluate"),
    params:
        config=sections(config, *TRAINING_CONFIG, "evaluation"),
    script:
        "../scripts/evaluate.py"

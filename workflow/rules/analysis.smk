rule efficiency:
    input:
        test="results/samples/{ptbin}/test.parquet",
        onnx="results/models/{ptbin}/model.onnx",
        skim_counts="results/skim/counts.json",
    output:
        "results/efficiency/{ptbin}.json",
    log:
        "logs/efficiency/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    params:
        config=sections(config, *TRAINING_CONFIG, "selection", "efficiency"),
    script:
        "../scripts/efficiency.py"


rule efficiency_plot:
    input:
        expand("results/efficiency/{ptbin}.json", ptbin=PT_BINS),
    output:
        report(
            "results/efficiency/efficiency.png",
            caption="../report/efficiency_pt.rst",
            category="3. Efficiency",
        ),
    log:
        "logs/efficiency/plot.log",
    conda:
        "../../envs/hfml.yaml"
    params:
        config=sections(config, "pt_bins", "classes"),
    script:
        "../scripts/efficiency_plot.py"


rule mass_fit:
    input:
        candidates=expand("results/apply/{group}.parquet", group=APPLY_GROUPS),
        test="results/samples/{ptbin}/test.parquet",
    output:
        fit="results/fits/{ptbin}/fit.json",
        plot=report(
            "results/fits/{ptbin}/mass_fit.png",
            caption="../report/mass_fit.rst",
            category="4. Mass fits",
            labels={"bin": "{ptbin}", "figure": "mass fit"},
        ),
        root="results/fits/{ptbin}/mass.root",
    log:
        "logs/fits/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    params:
        config=sections(config, "pt_bins", "classes", "fit"),
    script:
        "../scripts/mass_fit.py"


rule closure:
    input:
        data=list(INPUTS["data"].values()),
        candidates=expand("results/apply/{group}.parquet", group=APPLY_GROUPS),
        fits=expand("results/fits/{ptbin}/fit.json", ptbin=PT_BINS),
        efficiencies=expand("results/efficiency/{ptbin}.json", ptbin=PT_BINS),
    output:
        table="results/closure/closure.json",
        plot=report(
            "results/closure/closure.png",
            caption="../report/closure.rst",
            category="5. Closure on the toy truth",
        ),
    log:
        "logs/closure.log",
    conda:
        "../../envs/hfml.yaml"
    params:
        config=sections(config, "inputs", "pt_bins", "classes", "efficiency", "fit"),
    script:
        "../scripts/closure.py"


rule summary:
    input:
        unpack(closure_table),
        samples=expand("results/samples/{ptbin}/sample.json", ptbin=PT_BINS),
        metrics=expand("results/models/{ptbin}/metrics.json", ptbin=PT_BINS),
        efficiencies=expand("results/efficiency/{ptbin}.json", ptbin=PT_BINS),
        fits=expand("results/fits/{ptbin}/fit.json", ptbin=PT_BINS),
    output:
        "results/summary.json",
    log:
        "logs/summary.log",
    conda:
        "../../envs/hfml.yaml"
    params:
        config=sections(config, "pt_bins"),
    script:
        "../scripts/summary.py"

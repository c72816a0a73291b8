rule collect_bin:
    input:
        expand("results/apply/{group}.parquet", group=APPLY_GROUPS),
    output:
        "results/candidates/{ptbin}.parquet",
    log:
        "logs/candidates/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("collect_bin"),
    params:
        config=sections(config, "pt_bins"),
    script:
        "../scripts/collect_bin.py"


rule working_point:
    input:
        candidates="results/candidates/{ptbin}.parquet",
        test="results/samples/{ptbin}/test.parquet",
        onnx="results/models/{ptbin}/model.onnx",
        model=MODEL,
    output:
        scan="results/working_point/{ptbin}/scan.json",
        map=report(
            "results/working_point/{ptbin}/significance_map.png",
            caption="../report/significance_map.rst",
            category="2. Working point",
            labels={"bin": "{ptbin}", "figure": "significance map"},
        ),
        curve=report(
            "results/working_point/{ptbin}/significance_efficiency.png",
            caption="../report/significance_efficiency.rst",
            category="2. Working point",
            labels={"bin": "{ptbin}", "figure": "significance vs efficiency"},
        ),
    log:
        "logs/working_point/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **rule_resources("working_point"),
    params:
        config=sections(config, *TRAINING_CONFIG, "selection", "apply", "fit", "export"),
    script:
        "../scripts/working_point.py"


rule cuts:
    input:
        optimised_scans,
    output:
        "results/working_point/cuts.json",
    log:
        "logs/working_point/cuts.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=500, runtime=5),
    params:
        config=sections(config, "pt_bins", "classes", "selection"),
    script:
        "../scripts/cuts.py"


rule efficiency:
    input:
        test="results/samples/{ptbin}/test.parquet",
        onnx="results/models/{ptbin}/model.onnx",
        skim_counts="results/skim/counts.json",
        cuts="results/working_point/cuts.json",
    output:
        "results/efficiency/{ptbin}.json",
    log:
        "logs/efficiency/{ptbin}.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=2000, runtime=10),
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
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    params:
        config=sections(config, "pt_bins", "classes"),
    script:
        "../scripts/efficiency_plot.py"


rule mass_fit:
    input:
        candidates="results/candidates/{ptbin}.parquet",
        cuts="results/working_point/cuts.json",
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
    resources:
        **job_resources(mem_mb=2000, runtime=10),
    params:
        config=sections(config, "pt_bins", "classes", "selection", "fit"),
    script:
        "../scripts/mass_fit.py"


rule closure:
    input:
        data=list(INPUTS["data"].values()),
        candidates=expand("results/candidates/{ptbin}.parquet", ptbin=PT_BINS),
        cuts="results/working_point/cuts.json",
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
    resources:
        **job_resources(mem_mb=4000, runtime=30),
    params:
        config=sections(
            config, "inputs", "pt_bins", "classes", "selection", "efficiency", "fit"
        ),
    script:
        "../scripts/closure.py"


rule summary:
    input:
        unpack(closure_table),
        samples=expand("results/samples/{ptbin}/sample.json", ptbin=PT_BINS),
        metrics=expand("results/models/{ptbin}/metrics.json", ptbin=PT_BINS),
        efficiencies=expand("results/efficiency/{ptbin}.json", ptbin=PT_BINS),
        fits=expand("results/fits/{ptbin}/fit.json", ptbin=PT_BINS),
        scans=expand("results/working_point/{ptbin}/scan.json", ptbin=PT_BINS),
        inputs="results/skim/counts.json",
    output:
        summary="results/summary.json",
        table=report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="0. Summary",
        ),
    log:
        "logs/summary.log",
    conda:
        "../../envs/hfml.yaml"
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    params:
        config=sections(config, "pt_bins", "classes"),
        # The configuration, whose hash the summary records (all of it but
        # the job resources, which do not change results).
        analysis={k: v for k, v in config.items() if k != "resources"},
    script:
        "../scripts/summary.py"

"""The ``hfml`` command line: what the workflow does, for use outside it."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from hfml import __version__
from hfml import config as hfml_config
from hfml.errors import HfmlError
from hfml.workflow import input_table


def _merge(base: dict, override: dict) -> dict:
    """Recursive update of nested mappings, as Snakemake merges config files."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_configs(paths: Sequence[str]) -> dict:
    """Merge YAML files (later ones win) and validate the result."""
    merged: dict = {}
    for path in paths:
        with open(path) as stream:
            _merge(merged, yaml.safe_load(stream) or {})
    schema = hfml_config.repository_root() / "workflow/schemas/config.schema.yaml"
    return hfml_config.validate(merged, schema)


def _check_config(args) -> None:
    config = load_configs(args.config)
    inputs = input_table(config)
    print(f"configuration valid: {', '.join(args.config)}")
    print(f"pT bins: {', '.join(hfml_config.pt_bin_labels(config['pt_bins']))}")
    for cls in config["classes"]:
        print(f"class {cls['name']} ({cls['source']}): {cls['query']}")
    for source, files in inputs.items():
        print(f"{source}: {len(files)} input files")


def _toy(args) -> None:
    from hfml.toy import write_toy_file

    toy = load_configs(args.config)["inputs"]["toy"]
    for source in args.source:
        for index in range(toy[source]["files"]):
            folder = Path(args.out) / source / f"{index:03d}"
            content = write_toy_file(
                source,
                index,
                toy,
                folder / "AO2D.root",
                folder / "truth.parquet",
                folder / "generated.parquet",
            )
            print(f"{folder / 'AO2D.root'}: {len(content.truth)} candidates")


def _provenance(args) -> None:
    from hfml import provenance

    record = provenance.read(args.file)
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(provenance.describe(record))


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="hfml", description=__doc__)
    main.add_argument("--version", action="version", version=__version__)
    commands = main.add_subparsers(dest="command", required=True)
    default = [str(hfml_config.repository_root() / "config" / "config.yaml")]

    check = commands.add_parser(
        "check-config", help="validate configuration files and summarise them"
    )
    check.add_argument("config", nargs="*", default=default, help="YAML files")
    check.set_defaults(run=_check_config)

    toy = commands.add_parser("toy", help="write the toy sample in O2 format")
    toy.add_argument("--out", required=True, help="output folder")
    toy.add_argument("--config", nargs="*", default=default, help="YAML files")
    toy.add_argument(
        "--source", nargs="*", choices=["data", "mc"], default=["data", "mc"]
    )
    toy.set_defaults(run=_toy)

    provenance = commands.add_parser(
        "provenance",
        help="print what a model, ONNX file or summary was made from",
    )
    provenance.add_argument(
        "file", help="model.json, model.txt, model.onnx, training.json or summary.json"
    )
    provenance.add_argument("--json", action="store_true", help="print the record")
    provenance.set_defaults(run=_provenance)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except HfmlError as err:
        print(f"hfml: error: {err}", file=sys.stderr)
        return 2
    return 0

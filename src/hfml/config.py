"""Loading and validating the workflow configuration.

Validation has two layers: the JSON Schema (types, ranges, unknown keys,
defaults) and the checks a schema cannot express (pT edges increasing, queries
that parse and name only columns of the input tree, classes from both data and
MC).  Every error names the key, the bad value and what is allowed.
"""

import io
import itertools
import os
import tokenize
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from hfml.errors import ConfigError, HfmlError, nearest
from hfml.io import resolve_inputs, tree_branches
from hfml.o2 import KNOWN_BRANCHES

SOURCES = ("data", "mc")
ALWAYS_KEPT = ("fM", "fPt")
"""Columns every skimmed sample carries: the invariant mass and the pT."""


def validate(config: dict, schema: str | os.PathLike | Mapping) -> dict:
    """Validate ``config`` in place against the schema, then semantically."""
    if not isinstance(schema, Mapping):
        with open(schema) as stream:
            schema = yaml.safe_load(stream)
    check_schema(config, schema)
    check_semantics(config)
    return config


def _with_defaults(validator_class):
    properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, props, instance, schema):
        if validator.is_type(instance, "object"):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill_defaults})


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Iterable) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


def check_schema(config: dict, schema: Mapping) -> None:
    """Fill defaults and raise :class:`ConfigError` on the most relevant violation."""
    error = jsonschema.exceptions.best_match(_Validator(schema).iter_errors(config))
    if error is None:
        return
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = "" if key == "(top level)" else f"{key}."
        details = "; ".join(
            f"unknown config key {prefix + name!r}{nearest(name, allowed)}"
            for name in unknown
        )
        raise ConfigError(f"{details} (allowed under {key}: {', '.join(allowed)})")
    description = error.schema.get("description", "") if error.schema else ""
    hint = f" ({description.strip()})" if description else ""
    raise ConfigError(f"config key {key!r}: {error.message}{hint}")


def pt_bin_label(low: float, high: float) -> str:
    """Name of a pT bin in file names, e.g. ``pt2_4`` or ``pt2.5_3``."""
    return f"pt{low:g}_{high:g}"


def pt_bin_labels(edges: Iterable[float]) -> list[str]:
    return [pt_bin_label(lo, hi) for lo, hi in itertools.pairwise(edges)]


def class_names(config: Mapping, source: str | None = None) -> list[str]:
    """Class names in config order, optionally only those of one source."""
    return [c["name"] for c in config["classes"] if source in (None, c["source"])]


def query_columns(query: str, columns: Iterable[str]) -> list[str]:
    """Columns among ``columns`` that the pandas query refers to, in order."""
    known = set(columns)
    names: list[str] = []
    tokens = tokenize.generate_tokens(io.StringIO(query).readline)
    try:
        for token in tokens:
            name = token.string
            if token.type == tokenize.NAME and name in known and name not in names:
                names.append(name)
    except (tokenize.TokenError, SyntaxError) as err:
        raise ConfigError(f"query {query!r} does not parse: {err}") from err
    return names


def undefined_name(err: NameError) -> str:
    """The name in pandas' "name 'x' is not defined"."""
    text = str(err)
    return text.split("'")[1] if text.count("'") >= 2 else text


def check_query(query: str, key: str, columns: Mapping[str, np.dtype | None]) -> None:
    """Check that a pandas query parses and names only known columns.

    The query is evaluated on an empty table with the columns' types, which is
    what pandas itself will do on the real candidates.
    """
    if not query.strip():
        return
    empty = pd.DataFrame(
        {name: np.empty(0, dtype or np.float32) for name, dtype in columns.items()}
    )
    try:
        result = empty.query(query)
    except pd.errors.UndefinedVariableError as err:
        name = undefined_name(err)
        raise ConfigError(
            f"config key {key!r}: query {query!r} names {name!r}, which is not a "
            f"branch of the input tree{nearest(name, columns)}"
        ) from err
    except (SyntaxError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(
            f"config key {key!r}: query {query!r} is not a valid pandas query: {err}"
        ) from err
    if not isinstance(result, pd.DataFrame):
        raise ConfigError(
            f"config key {key!r}: query {query!r} must select rows (a condition)"
        )


def input_files(config: Mapping, source: str) -> list[str]:
    """The real input files of a source (``data`` or ``mc``), resolved from globs."""
    return resolve_inputs(config["inputs"][source], key=f"inputs.{source}")


def input_columns(config: Mapping, source: str) -> dict[str, np.dtype | None]:
    """Branches (and their dtypes) of the input tree of ``source``.

    The toy sample has the documented O2 layout; real inputs are read from the
    first file of the source.
    """
    tree = config["inputs"]["tree"]
    if config["inputs"]["toy"]["enabled"]:
        return dict(KNOWN_BRANCHES[tree]) if tree in KNOWN_BRANCHES else {}
    files = input_files(config, source)
    if not files:
        raise ConfigError(
            f"config key 'inputs.{source}' lists no file and inputs.toy.enabled is "
            "false: give paths or glob patterns of the input files"
        )
    try:
        return tree_branches(files[0], tree)
    except HfmlError as err:
        raise ConfigError(f"inputs.{source}: {err}") from err


def check_semantics(config: Mapping) -> None:
    """Checks that the schema cannot express; raises :class:`ConfigError`."""
    edges = config["pt_bins"]
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        if not high > low:
            raise ConfigError(
                f"config key 'pt_bins': edges must be strictly increasing, but "
                f"pt_bins[{i + 1}] = {high} follows pt_bins[{i}] = {low}"
            )

    low, high = config["fit"]["range"]
    if not high > low:
        raise ConfigError(
            f"config key 'fit.range': expected [low, high) with low < high, got "
            f"[{low}, {high}]"
        )

    names = class_names(config)
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"config key 'classes': class name {name!r} is repeated")
    for source in SOURCES:
        if not class_names(config, source):
            raise ConfigError(
                f"config key 'classes': no class has source {source!r}; at least one "
                "class must come from data and one from mc"
            )

    toy = config["inputs"]["toy"]
    if toy["enabled"] and config["inputs"]["tree"] not in KNOWN_BRANCHES:
        raise ConfigError(
            f"config key 'inputs.tree': the toy sample is written as "
            f"{', '.join(KNOWN_BRANCHES)}, not {config['inputs']['tree']!r}"
        )

    check_training(config)
    check_selection(config)
    for source in SOURCES:
        columns = input_columns(config, source)
        check_query(config["preselection"], "preselection", columns)
        for i, cls in enumerate(config["classes"]):
            if cls["source"] == source:
                check_query(cls["query"], f"classes[{i}].query", columns)
        for key in ("features", "skim.columns"):
            section, _, name = key.partition(".")
            listed = config[section][name] if name else config[section]
            _check_columns(listed, key, columns, source)


def check_training(config: Mapping) -> None:
    """Per-bin overrides, class caps, hyper-parameters and the search space."""
    from hfml.models import check_hyperparameters

    labels = pt_bin_labels(config["pt_bins"])
    names = class_names(config)
    training = config["training"]
    library = training["library"]
    skimmed = [*config["features"], *config["skim"]["columns"]]
    check_hyperparameters(
        library,
        training["hyperparameters"][library],
        f"training.hyperparameters.{library}",
    )
    balances = {"training.balance": training["balance"]}
    for ptbin, override in training["per_bin"].items():
        key = f"training.per_bin.{ptbin}"
        if ptbin not in labels:
            raise ConfigError(
                f"config key {key!r}: {ptbin!r} is not a pT bin{nearest(ptbin, labels)}"
                f" (bins: {', '.join(labels)})"
            )
        for i, feature in enumerate(override.get("features", [])):
            if feature not in skimmed:
                raise ConfigError(
                    f"config key '{key}.features[{i}]': {feature!r} is neither in "
                    f"features nor in skim.columns{nearest(feature, skimmed)}"
                )
        check_hyperparameters(
            library, override.get("hyperparameters", {}), f"{key}.hyperparameters"
        )
        balances[f"{key}.balance"] = override.get("balance", {})
    for key, balance in balances.items():
        for name in balance.get("caps", {}):
            if name not in names:
                raise ConfigError(
                    f"config key '{key}.caps': {name!r} is not a class"
                    f"{nearest(name, names)}"
                )
    space = config["optuna"]["search_space"][library]
    check_hyperparameters(library, space, f"optuna.search_space.{library}")
    for name, spec in space.items():
        key = f"optuna.search_space.{library}.{name}"
        if spec["type"] == "categorical":
            if "choices" not in spec:
                raise ConfigError(f"config key {key!r}: a categorical needs choices")
        elif not ("low" in spec and "high" in spec and spec["low"] < spec["high"]):
            raise ConfigError(
                f"config key {key!r}: an {spec['type']} range needs low < high"
            )


def check_selection(config: Mapping) -> None:
    """The cuts table is [pT bins][classes] inside the loose cuts, or the scan
    of ``selection.optimise`` is; one direction per class."""
    n_bins, n_classes = len(config["pt_bins"]) - 1, len(config["classes"])
    selection = config["selection"]
    if len(selection["cut_dirs"]) != n_classes:
        raise ConfigError(
            f"config key 'selection.cut_dirs': {len(selection['cut_dirs'])} "
            f"directions for {n_classes} classes; give one per class"
        )
    loose = config["apply"]["loose_cuts"]
    if len(loose) != n_classes:
        raise ConfigError(
            f"config key 'apply.loose_cuts': expected {n_classes} values, one per class"
        )
    # The scan runs with a cuts table too, to show where the cuts lie.
    check_optimise(config)
    cuts = selection["cuts"]
    if cuts == "optimise":
        return
    if len(cuts) != n_bins or any(len(row) != n_classes for row in cuts):
        shape = f"{len(cuts)} rows of {sorted({len(r) for r in cuts})} values"
        raise ConfigError(
            f"config key 'selection.cuts': the table has {shape}; expected {n_bins} "
            f"rows (pT bins) of {n_classes} values (classes)"
        )
    labels, names = pt_bin_labels(config["pt_bins"]), class_names(config)
    for i, row in enumerate(cuts):
        for k, (cut, bound) in enumerate(zip(row, loose, strict=True)):
            if not _inside_loose(cut, bound, selection["cut_dirs"][k]):
                raise ConfigError(
                    f"config key 'selection.cuts[{i}][{k}]': the {names[k]} cut "
                    f"{cut:g} of {labels[i]} is looser than its loose cut {bound:g} "
                    "(apply.loose_cuts), below which the apply stage writes nothing"
                )


def _inside_loose(cut: float, loose: float, direction: int) -> bool:
    """Whether a cut keeps no candidate that the loose cut rejects."""
    if direction == 0:  # CutGreater: keep a score at or below the cut
        return cut <= loose
    if direction == 1:  # CutSmaller: keep a score at or above the cut
        return cut >= loose
    return True


def check_optimise(config: Mapping) -> None:
    """``selection.optimise`` scans cuts of classes, inside the loose cuts."""
    selection = config["selection"]
    names = class_names(config)
    optimise = selection["optimise"]
    key = "selection.optimise"
    for name, spec in optimise["scan"].items():
        if name not in names:
            raise ConfigError(
                f"config key '{key}.scan.{name}': {name!r} is not a class"
                f"{nearest(name, names)}"
            )
        index = names.index(name)
        direction = selection["cut_dirs"][index]
        first, last = spec["range"]
        where = f"config key '{key}.scan.{name}.range'"
        if not first < last:
            raise ConfigError(f"{where}: expected [low, high] with low < high")
        if spec["log"] and first <= 0:
            raise ConfigError(f"{where}: a logarithmic scan needs low > 0")
        if direction == 2:
            raise ConfigError(
                f"{where}: class {name!r} has direction 2 (CutNot) in "
                "selection.cut_dirs, so its score is not cut and cannot be scanned"
            )
        loose = config["apply"]["loose_cuts"][index]
        if not all(_inside_loose(v, loose, direction) for v in (first, last)):
            raise ConfigError(
                f"{where}: the scan must stay inside the loose cut {loose:g} of "
                "apply.loose_cuts, below which the apply stage writes nothing"
            )
    signal = optimise["signal"]
    n_bins = len(config["pt_bins"]) - 1
    if signal != "fit" and len(signal) != n_bins:
        raise ConfigError(
            f"config key '{key}.signal': {len(signal)} expected yields for "
            f"{n_bins} pT bins; give one per bin, or 'fit'"
        )
    mc = class_names(config, "mc")
    if optimise["signal_class"] not in mc:
        wrong = optimise["signal_class"]
        raise ConfigError(
            f"config key '{key}.signal_class': {wrong!r} is not an MC class"
            f"{nearest(wrong, mc)}"
        )


def _check_columns(
    names: Iterable[str], key: str, columns: Mapping[str, Any], source: str
) -> None:
    for i, name in enumerate(names):
        if name not in columns:
            raise ConfigError(
                f"config key '{key}[{i}]': {name!r} is not a branch of the "
                f"{source} input tree{nearest(name, columns)}"
            )
        if columns[name] is None:
            raise ConfigError(
                f"config key '{key}[{i}]': branch {name!r} is not a numeric scalar"
            )


def skim_columns(config: Mapping, source: str) -> tuple[list[str], list[str]]:
    """Branches a skim job reads and the subset it writes, for one source."""
    available = input_columns(config, source)
    written = list(
        dict.fromkeys([*config["features"], *ALWAYS_KEPT, *config["skim"]["columns"]])
    )
    queries = [config["preselection"]]
    queries += [c["query"] for c in config["classes"] if c["source"] == source]
    read = list(written)
    for query in queries:
        read += [c for c in query_columns(query, available) if c not in read]
    return read, written


def repository_root() -> Path:
    """The source tree holding the workflow, for tests and the command line."""
    return Path(__file__).resolve().parents[2]

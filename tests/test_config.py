"""Configuration validation: every mistake names its key and what is allowed."""

import copy
import os

import pytest

from hfml import config as hfml_config
from hfml.errors import ConfigError
from tests.conftest import write_tree_file


def check(raw, schema):
    return hfml_config.validate(copy.deepcopy(raw), schema)


def test_default_config_is_valid(raw_config, schema):
    config = check(raw_config, schema)
    assert config["inputs"]["toy"]["enabled"] is True
    assert [c["name"] for c in config["classes"]] == ["bkg", "prompt", "nonprompt"]


def test_defaults_fill_omitted_sections(raw_config, schema):
    del raw_config["skim"]
    del raw_config["inputs"]["toy"]["mc"]
    config = check(raw_config, schema)
    assert config["skim"] == {"files_per_job": 1, "chunk_size": 500000, "columns": []}
    assert config["inputs"]["toy"]["mc"]["files"] == 2


@pytest.mark.parametrize(
    ("path", "key", "suggestion"),
    [((), "featurs", "features"), (("inputs", "toy"), "sed", "seed")],
)
def test_unknown_key_is_named_with_nearest(raw_config, schema, path, key, suggestion):
    section = raw_config
    for part in path:
        section = section[part]
    section[key] = 1
    dotted = ".".join([*path, key])
    with pytest.raises(ConfigError, match=f"unknown config key '{dotted}'") as err:
        check(raw_config, schema)
    assert f"did you mean '{suggestion}'" in str(err.value)


def test_wrong_type_names_key_and_value(raw_config, schema):
    raw_config["inputs"]["toy"]["seed"] = "abc"
    with pytest.raises(ConfigError, match=r"'inputs.toy.seed': 'abc' is not of type"):
        check(raw_config, schema)


def test_bad_class_source_lists_allowed(raw_config, schema):
    raw_config["classes"][1]["source"] = "montecarlo"
    with pytest.raises(ConfigError, match=r"classes\[1\].source.*'data', 'mc'"):
        check(raw_config, schema)


def test_pt_edges_must_increase(raw_config, schema):
    raw_config["pt_bins"] = [2, 4, 4, 8]
    with pytest.raises(ConfigError, match=r"pt_bins\[2\] = 4 follows pt_bins\[1\] = 4"):
        check(raw_config, schema)


def test_query_with_unknown_column_suggests_branch(raw_config, schema):
    raw_config["classes"][0]["query"] = "fMass < 1.82"
    with pytest.raises(ConfigError) as err:
        check(raw_config, schema)
    message = str(err.value)
    assert "classes[0].query" in message
    assert "'fMass'" in message
    assert "did you mean 'fM'" in message


def test_query_that_does_not_parse(raw_config, schema):
    raw_config["preselection"] = "fCpa > "
    with pytest.raises(ConfigError, match=r"'preselection'.*not a valid pandas query"):
        check(raw_config, schema)


def test_classes_need_data_and_mc(raw_config, schema):
    raw_config["classes"] = [c for c in raw_config["classes"] if c["source"] == "mc"]
    with pytest.raises(ConfigError, match="no class has source 'data'"):
        check(raw_config, schema)


def test_repeated_class_name(raw_config, schema):
    raw_config["classes"][2]["name"] = "prompt"
    with pytest.raises(ConfigError, match="'prompt' is repeated"):
        check(raw_config, schema)


def test_feature_must_be_a_branch(raw_config, schema):
    raw_config["features"].append("fDecayLenght")
    with pytest.raises(
        ConfigError, match=r"features\[15\].*did you mean 'fDecayLength'"
    ):
        check(raw_config, schema)


def test_real_inputs_must_match_files(raw_config, schema, tmp_path):
    raw_config["inputs"]["toy"]["enabled"] = False
    raw_config["inputs"]["data"] = [str(tmp_path / "missing" / "*.root")]
    with pytest.raises(ConfigError, match=r"'inputs.data\[0\]': no file matches"):
        check(raw_config, schema)


def test_real_inputs_queries_are_checked_against_the_file(raw_config, schema, tmp_path):
    write_tree_file(tmp_path / "data.root")
    write_tree_file(tmp_path / "mc.root")
    raw_config["inputs"]["toy"]["enabled"] = False
    raw_config["inputs"]["data"] = [str(tmp_path / "data.root")]
    raw_config["inputs"]["mc"] = [str(tmp_path / "m*.root")]
    check(raw_config, schema)

    raw_config["classes"][1]["query"] = "fOriginMc == 1"
    with pytest.raises(ConfigError, match="did you mean 'fOriginMcRec'"):
        check(raw_config, schema)


def test_pt_bin_labels_read_like_edges():
    assert hfml_config.pt_bin_labels([2, 4, 6.5, 12]) == [
        "pt2_4",
        "pt4_6.5",
        "pt6.5_12",
    ]


def test_query_columns_only_names_known_columns():
    columns = ["fM", "fPt", "fFlagMcMatchRec"]
    query = "abs(fFlagMcMatchRec) == 5 and fM < 2 or fM > 2.1"
    assert hfml_config.query_columns(query, columns) == ["fFlagMcMatchRec", "fM"]


def test_inputs_from_file_lists_as_grid_catalogues_give_them(tmp_path, monkeypatch):
    from hfml.io import resolve_inputs

    for name in ("a/001/AO2D.root", "a/002/AO2D.root", "b/AO2D.root"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "files.txt"
    listing.write_text(
        "# run 544123\n\na/001/AO2D.root\n"
        f"  {tmp_path / 'b' / 'AO2D.root'}  \na/*/AO2D.root\n"
    )
    files = resolve_inputs([str(listing)], "inputs.data")
    assert files == sorted(
        str(tmp_path / n) for n in ("a/001/AO2D.root", "a/002/AO2D.root", "b/AO2D.root")
    )

    # The same file spelt relative to the working directory and absolute,
    # by a pattern and by a list, is one input, not two.
    monkeypatch.chdir(tmp_path)
    files = resolve_inputs(["b/AO2D.root", str(listing), "./a/*/*.root"], "x")
    assert sorted(map(os.path.abspath, files)) == sorted(
        str(tmp_path / n) for n in ("a/001/AO2D.root", "a/002/AO2D.root", "b/AO2D.root")
    )

    listing.write_text("a/001/AO2D.root\na/003/AO2D.root\n")
    with pytest.raises(
        ConfigError, match=r"'inputs.data\[0\]': '.*files.txt' line 2: no file matches"
    ):
        resolve_inputs([str(listing)], "inputs.data")
    with pytest.raises(ConfigError, match="cannot read the file list"):
        resolve_inputs([str(tmp_path / "missing.txt")], "inputs.data")


def test_resources_of_an_unknown_job_name_the_nearest(raw_config, schema):
    raw_config["resources"]["aply"] = {"mem_mb": 1000, "runtime": 5}
    with pytest.raises(ConfigError, match=r"resources.aply.*did you mean 'apply'"):
        check(raw_config, schema)

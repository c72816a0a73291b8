"""The skim stage: counts equal a direct pandas computation, bad input fails
clearly and leaves nothing behind, odd but valid input is handled."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hfml.errors import ConfigError, InputError
from hfml.o2 import LITE_BRANCHES, bin_index
from hfml.skim import merge, skim_files
from hfml.toy import write_toy_file
from hfml.workflow import skim_keys
from tests.conftest import write_tree_file


def outputs_for(tmp_path, config, source):
    return {
        key: str(tmp_path / "out" / f"{key[0]}_{key[1]}.parquet")
        for key in skim_keys(config, source)
    }


def run_skim(tmp_path, path, source, config):
    outputs = outputs_for(tmp_path, config, source)
    counts = tmp_path / "out" / "counts.json"
    skim_files([str(path)], source, config, outputs, str(counts))
    return outputs, json.loads(counts.read_text())


def assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture
def mc_file(tmp_path, tiny_toy):
    path = tmp_path / "mc.root"
    write_toy_file("mc", 0, tiny_toy, path, tmp_path / "t.pq", tmp_path / "g.pq")
    return path


def direct_frame(path, tree="O2hfcanddslite"):
    import uproot

    with uproot.open(path) as file:
        frames = [
            file[f"{k}/{tree}"].arrays(library="pd")
            for k in file.keys(recursive=False, cycle=False)
            if k.startswith("DF_")
        ]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("chunk_size", [1000, 500000])
def test_counts_equal_direct_pandas_computation(
    tmp_path, mc_file, skim_config, chunk_size
):
    skim_config["skim"]["chunk_size"] = chunk_size
    outputs, counts = run_skim(tmp_path, mc_file, "mc", skim_config)

    frame = direct_frame(mc_file)
    presel = frame.query(skim_config["preselection"])
    assert counts["candidates_read"] == len(frame)
    assert counts["candidates_preselected"] == len(presel)
    for cls in skim_config["classes"][1:]:
        for label, (low, high) in {"pt2_4": (2, 4), "pt4_8": (4, 8)}.items():
            in_bin = f"fPt >= {low} and fPt < {high}"
            expected = presel.query(f"({cls['query']}) and {in_bin}")
            written = pd.read_parquet(outputs[(cls["name"], label)])
            assert counts["classes"][cls["name"]][label]["selected"] == len(expected)
            before = frame.query(f"({cls['query']}) and {in_bin}")
            assert counts["classes"][cls["name"]][label]["before_preselection"] == len(
                before
            )
            assert len(written) > 0
            pd.testing.assert_frame_equal(
                written, expected[written.columns].reset_index(drop=True)
            )


def test_outputs_keep_features_mass_pt_with_tree_types(tmp_path, mc_file, skim_config):
    outputs, _ = run_skim(tmp_path, mc_file, "mc", skim_config)
    schema = pq.read_schema(next(iter(outputs.values())))
    expected = list(dict.fromkeys([*skim_config["features"], "fM", "fPt"]))
    assert schema.names == expected
    frame = pd.read_parquet(next(iter(outputs.values())))
    for name in expected:
        assert frame[name].dtype == LITE_BRANCHES[name]


def test_chunk_size_does_not_change_outputs(tmp_path, mc_file, skim_config):
    results = []
    for chunk_size in (1000, 1_000_000):
        skim_config["skim"]["chunk_size"] = chunk_size
        out = tmp_path / str(chunk_size)
        outputs, _ = run_skim(out, mc_file, "mc", skim_config)
        results.append({k: pd.read_parquet(v) for k, v in outputs.items()})
    for key in results[0]:
        pd.testing.assert_frame_equal(results[0][key], results[1][key])


def test_parquet_input_gives_same_result_as_root(tmp_path, mc_file, skim_config):
    parquet = tmp_path / "mc.parquet"
    direct_frame(mc_file).to_parquet(parquet, index=False)
    from_root, counts_root = run_skim(tmp_path / "root", mc_file, "mc", skim_config)
    from_parquet, counts_pq = run_skim(tmp_path / "pq", parquet, "mc", skim_config)
    assert counts_root["classes"] == counts_pq["classes"]
    for key in from_root:
        pd.testing.assert_frame_equal(
            pd.read_parquet(from_root[key]), pd.read_parquet(from_parquet[key])
        )


def test_only_df_folders_and_highest_cycle_are_read(tmp_path, skim_config):
    import uproot

    path = tmp_path / "cycles.root"
    write_tree_file(path, sizes=(40,))
    with uproot.update(path) as file:
        file["parentFiles"] = "not a tree"
        newer = {n: np.zeros(5, t) for n, t in LITE_BRANCHES.items()}
        tree = file.mktree("DF_1000/O2hfcanddslite", dict(LITE_BRANCHES))
        tree.extend(newer)
    _, counts = run_skim(tmp_path, path, "data", skim_config)
    assert counts["candidates_read"] == 5


def test_empty_tree_gives_empty_typed_outputs(tmp_path, skim_config):
    path = tmp_path / "empty.root"
    write_tree_file(path, sizes=(0, 0))
    outputs, counts = run_skim(tmp_path, path, "data", skim_config)
    assert counts["candidates_read"] == 0
    for output in outputs.values():
        frame = pd.read_parquet(output)
        assert len(frame) == 0
        assert frame["fM"].dtype == np.float32
        assert list(frame.columns)[-2:] == ["fM", "fPt"]


def test_bin_without_candidates_is_empty_not_an_error(tmp_path, skim_config, caplog):
    path = tmp_path / "low.root"
    frames = write_tree_file(path, sizes=(30,))
    assert frames
    skim_config["pt_bins"] = [20, 30, 40]
    outputs, counts = run_skim(tmp_path, path, "data", skim_config)
    assert all(len(pd.read_parquet(p)) == 0 for p in outputs.values())
    assert counts["outside_pt_bins"] == counts["candidates_preselected"]
    assert "bkg, pt20_30: 0 candidates" in caplog.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.99, -1), (2.0, 0), (3.999, 0), (4.0, 1), (7.99, 1), (8.0, -1), (100, -1)],
)
def test_pt_bins_are_closed_below_open_above(value, expected):
    assert bin_index(np.array([value], np.float32), [2, 4, 8])[0] == expected


def test_missing_file(tmp_path, skim_config):
    with pytest.raises(InputError, match=r"input file '.*nowhere.root' does not exist"):
        run_skim(tmp_path, tmp_path / "nowhere.root", "data", skim_config)
    assert_nothing_written(tmp_path)


def test_file_that_is_not_root(tmp_path, skim_config):
    path = tmp_path / "notes.root"
    path.write_text("candidate list, version 1\n")
    with pytest.raises(InputError, match="is not a ROOT file"):
        run_skim(tmp_path, path, "data", skim_config)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_root_file(tmp_path, mc_file, skim_config, fraction):
    content = mc_file.read_bytes()
    path = tmp_path / "truncated.root"
    path.write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(InputError, match="truncated"):
        run_skim(tmp_path, path, "mc", skim_config)
    assert_nothing_written(tmp_path)


def test_missing_tree_lists_what_is_there(tmp_path, skim_config):
    path = tmp_path / "full.root"
    write_tree_file(path, tree="O2hfcanddsfull")
    with pytest.raises(InputError) as err:
        run_skim(tmp_path, path, "data", skim_config)
    message = str(err.value)
    assert "has no tree 'O2hfcanddslite'" in message
    assert "did you mean 'O2hfcanddsfull'" in message
    assert "DF_1000" in message
    assert_nothing_written(tmp_path)


def test_missing_branch_lists_nearest_names(tmp_path, skim_config):
    types = dict(LITE_BRANCHES)
    types["fCpaXYZ"] = types.pop("fCpaXY")
    path = tmp_path / "renamed.root"
    write_tree_file(path, types=types)
    with pytest.raises(InputError) as err:
        run_skim(tmp_path, path, "data", skim_config)
    message = str(err.value)
    assert "has no branch 'fCpaXY'" in message
    assert "did you mean 'fCpaXYZ'" in message
    assert "renamed.root" in message
    assert_nothing_written(tmp_path)


def test_branch_of_wrong_type(tmp_path, skim_config):
    types = dict(LITE_BRANCHES)
    types["fM"] = np.dtype(np.float64)
    path = tmp_path / "double.root"
    write_tree_file(path, types=types)
    with pytest.raises(
        InputError, match=r"branch 'fM'.*holds float64, expected float32"
    ):
        run_skim(tmp_path, path, "data", skim_config)
    assert_nothing_written(tmp_path)


def test_parquet_missing_column(tmp_path, skim_config):
    path = tmp_path / "cands.parquet"
    pd.DataFrame({"fM": np.ones(3, np.float32)}).to_parquet(path)
    with pytest.raises(InputError, match="has no branch 'fCpa'"):
        run_skim(tmp_path, path, "data", skim_config)
    assert_nothing_written(tmp_path)


def test_merge_concatenates_in_order(tmp_path):
    paths = []
    for k in range(3):
        path = tmp_path / f"{k}.parquet"
        pd.DataFrame({"fM": np.full(k + 1, k, np.float32)}).to_parquet(
            path, index=False
        )
        paths.append(str(path))
    assert merge(paths, str(tmp_path / "all.parquet")) == 6
    merged = pd.read_parquet(tmp_path / "all.parquet")
    assert merged["fM"].tolist() == [0, 1, 1, 2, 2, 2]


def test_merge_rejects_different_columns(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"fM": np.ones(2, np.float32)}).to_parquet(first, index=False)
    pd.DataFrame({"fPt": np.ones(2, np.float32)}).to_parquet(second, index=False)
    with pytest.raises(InputError, match="has columns"):
        merge([str(first), str(second)], str(tmp_path / "out" / "all.parquet"))
    assert_nothing_written(tmp_path)


def test_query_naming_an_unknown_column(tmp_path, mc_file, skim_config):
    skim_config["classes"][1]["query"] = "fOriginMc == 1"
    with pytest.raises(ConfigError, match=r"classes\[1\].query.*'fOriginMc'"):
        run_skim(tmp_path, mc_file, "mc", skim_config)
    assert_nothing_written(tmp_path)


def test_data_reserved_for_training_is_a_fixed_nested_fraction():
    from hfml.skim import reserved_for_training

    df = np.repeat([2261906078600000, 2261906078601000, -1], 40000)
    entry = np.tile(np.arange(40000), 3)
    reserved = reserved_for_training(df, entry, 0.3)
    assert abs(reserved.mean() - 0.3) < 0.01
    # The same candidates on every read, in any order.
    order = np.random.default_rng(1).permutation(len(df))
    np.testing.assert_array_equal(
        reserved_for_training(df[order], entry[order], 0.3), reserved[order]
    )
    # Each time frame contributes its share, not all or nothing.
    for frame in np.unique(df):
        assert abs(reserved[df == frame].mean() - 0.3) < 0.02
    assert reserved_for_training(df, entry, 0.5)[reserved].all()


def test_read_ahead_reads_the_next_chunk_while_the_current_one_is_used():
    import threading

    from hfml.io import read_ahead

    second_read = threading.Event()

    def chunks():
        yield "first"
        second_read.set()
        yield "second"
        raise InputError("'broken.root': truncated")

    received = []
    with pytest.raises(InputError, match="truncated"), read_ahead(chunks()) as ahead:
        for chunk in ahead:
            if chunk == "first":
                # Produced in the background while the first is in use.
                assert second_read.wait(timeout=10)
            received.append(chunk)
    assert received == ["first", "second"]


def test_read_ahead_starts_reading_on_entry_and_closes_the_reader():
    import threading

    from hfml.io import read_ahead

    first_read, closed = threading.Event(), threading.Event()

    def chunks():
        try:
            first_read.set()
            yield "first"
            yield "second"
        finally:
            closed.set()

    with read_ahead(chunks()) as ahead:
        # Read in the background before anything asks for it.
        assert first_read.wait(timeout=10)
        assert next(ahead) == "first"
    # Leaving early closes the reader (and with it, its file).
    assert closed.is_set()


def test_a_group_of_files_skims_as_the_files_one_by_one(tmp_path, skim_config):
    paths = []
    for index in range(2):
        path = tmp_path / f"mc{index}.root"
        sidecars = tmp_path / f"sidecars{index}"
        toy = skim_config["inputs"]["toy"]
        write_toy_file("mc", index, toy, path, sidecars / "t.pq", sidecars / "g.pq")
        paths.append(str(path))
    singles = [
        run_skim(tmp_path / f"single{i}", p, "mc", skim_config)
        for i, p in enumerate(paths)
    ]
    outputs = outputs_for(tmp_path / "group", skim_config, "mc")
    counts_path = tmp_path / "group" / "counts.json"
    skim_files(paths, "mc", skim_config, outputs, str(counts_path))
    counts = json.loads(counts_path.read_text())
    assert counts["files"] == paths
    assert counts["candidates_read"] == sum(c["candidates_read"] for _, c in singles)
    for key, path in outputs.items():
        expected = pd.concat(
            [pd.read_parquet(single[key]) for single, _ in singles], ignore_index=True
        )
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected)

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hfml import config as hfml_config
from hfml.io import write_o2_file
from hfml.o2 import DEFAULT_TREE, LITE_BRANCHES

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


CONFIGS = [str(REPO / "config" / "config.yaml"), str(REPO / ".test" / "config.yaml")]


def snakemake(workdir, *args, check=True, configs=CONFIGS, env=None):
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        *configs,
        "--cores",
        "2",
        *args,
    ]
    # In a session of its own: a test may kill Snakemake's process group.
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        start_new_session=True,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    snakemake(workdir)
    return workdir


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Checked ensembles are cached in a folder of the test session, not the
    user's (the variable reaches the workflows the tests start too)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFML_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def schema() -> dict:
    return read_yaml(SCHEMA)


@pytest.fixture
def raw_config() -> dict:
    """The default configuration as a user would edit it (not yet validated)."""
    return read_yaml(REPO / "config" / "config.yaml")


@pytest.fixture
def config(raw_config, schema) -> dict:
    return hfml_config.validate(copy.deepcopy(raw_config), schema)


TINY_TOY = {
    "enabled": True,
    "seed": 7,
    "mass_resolution": {"constant": 0.006, "slope": 0.0006},
    "data": {
        "files": 1,
        "dataframes_per_file": 3,
        "background_per_file": 6000,
        "ds_per_file": 3000,
    },
    "mc": {
        "files": 1,
        "dataframes_per_file": 2,
        "background_per_file": 1000,
        "ds_per_file": 12000,
        "dplus_per_file": 3000,
    },
}


@pytest.fixture
def tiny_toy() -> dict:
    return copy.deepcopy(TINY_TOY)


@pytest.fixture
def skim_config(config, tiny_toy):
    config = copy.deepcopy(config)
    config["inputs"]["toy"] = tiny_toy
    config["pt_bins"] = [2, 4, 8]
    return config


def candidate_arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` rows of every lite branch, random but well typed."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, dtype in LITE_BRANCHES.items():
        if dtype.kind == "f":
            arrays[name] = rng.uniform(0, 3, n).astype(dtype)
        else:
            arrays[name] = rng.integers(-1, 3, n).astype(dtype)
    arrays["fM"] = rng.uniform(1.7, 2.2, n).astype(np.float32)
    arrays["fPt"] = rng.uniform(0, 15, n).astype(np.float32)
    arrays["fFlagMcMatchRec"] = rng.choice(np.array([0, 5, -5, 4], np.int8), n)
    arrays["fOriginMcRec"] = rng.choice(np.array([0, 1, 2], np.int8), n)
    return arrays


def write_tree_file(path, sizes=(50, 30), seed=0, types=None, tree=DEFAULT_TREE):
    """An O2 file with one DF_ folder per entry of ``sizes``."""
    types = dict(LITE_BRANCHES if types is None else types)
    frames = {}
    for k, size in enumerate(sizes):
        arrays = candidate_arrays(size, seed + k)
        frames[f"DF_{1000 + k}"] = {n: arrays.get(n, np.zeros(size)) for n in types}
    write_o2_file(path, frames, tree, types)
    return frames

"""The command line validates configurations and writes the toy sample."""

import uproot
import yaml

from hfml.cli import main
from tests.conftest import REPO

DEFAULT = str(REPO / "config" / "config.yaml")
TINY = str(REPO / ".test" / "config.yaml")


def test_check_config_summarises_a_valid_config(capsys):
    assert main(["check-config", DEFAULT, TINY]) == 0
    out = capsys.readouterr().out
    assert "pT bins: pt2_4, pt4_8" in out
    assert "data: 2 input files" in out


def test_check_config_reports_the_bad_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"skim": {"chunk_size": 10}}))
    assert main(["check-config", DEFAULT, str(bad)]) == 2
    assert "'skim.chunk_size': 10 is less than the minimum" in capsys.readouterr().err


def test_toy_command_writes_o2_files(tmp_path):
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text(
        yaml.safe_dump({"inputs": {"toy": {"mc": {"files": 1, "ds_per_file": 200}}}})
    )
    assert (
        main(
            [
                "toy",
                "--out",
                str(tmp_path),
                "--source",
                "mc",
                "--config",
                DEFAULT,
                str(sizes),
            ]
        )
        == 0
    )
    with uproot.open(tmp_path / "mc" / "000" / "AO2D.root") as file:
        assert any(k.startswith("DF_") for k in file.keys(recursive=False))
    assert (tmp_path / "mc" / "000" / "truth.parquet").exists()

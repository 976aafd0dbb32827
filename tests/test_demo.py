"""``python -m skvae demo``: the command a newcomer runs first."""

import subprocess
import sys

import pytest

from skvae.__main__ import main

pytest.importorskip("matplotlib", reason="the demo draws with matplotlib (tests extra)")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_help_documents_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "skvae", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--out", "--n-components", "--device", "--seed", "--epochs", "--quick"):
        assert option in result.stdout


def test_quick_run_prints_the_table_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["demo", "--quick", "--no-progress", "--out", str(out), "--n-components", "4"]) == 0
    printed = capsys.readouterr().out
    for model in ("PCA(4)", "linear AE(4)", "deep AE(4)", "VAE(4)"):
        assert model in printed
    for column in ("fit s", "test MSE", "score", "device"):
        assert column in printed
    assert "not a density" in printed  # the autoencoders' score is said to be no density
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["reconstructions.png", "latent_maps.png", "latent_grids.png", "samples.png"]
    )
    for path in out.iterdir():
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_unknown_command_and_bad_option_fail_with_a_message(capsys):
    assert main(["train"]) == 2
    assert "only command is 'demo'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--epochs must be at least 1; got 0"):
        main(["demo", "--epochs", "0"])

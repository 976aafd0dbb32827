"""``python -m skvae demo``: the command a newcomer runs first."""

import re
import subprocess
import sys

import pytest

from skvae.__main__ import main

pytest.importorskip("matplotlib", reason="the demo draws with matplotlib (tests extra)")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_help_documents_every_option_without_importing_torch():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['skvae', 'demo', '--help']\n"
        "try:\n"
        "    runpy.run_module('skvae', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    for option in ("--out", "--n-components", "--device", "--seed", "--epochs", "--quick"):
        assert option in result.stdout
    assert "torch imported: False" in result.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        (["--device", "gpu"], "--device 'gpu' is not a torch device; use 'cpu', 'cuda'"),
        (["--device", "cpu:1"], "--device 'cpu:1' is not a torch device"),
        (["--n-components", "100"], r"--n-components must be in \[1, 64\].*got 100"),
        (["--n-components", "0"], r"--n-components must be in \[1, 64\].*got 0"),
        (["--epochs", "0"], "--epochs must be at least 1; got 0"),
        (["--seed", "-1"], r"--seed must be in \[0, 4294967295\]; got -1"),
        (["--n-components", "two"], "invalid int value: 'two'"),
    ],
)
def test_a_bad_option_is_one_line_on_stderr_and_exit_status_2(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("python -m skvae demo: error: ")
    assert re.search(message, err)


def test_out_naming_an_existing_file_is_refused(tmp_path, capsys):
    existing = tmp_path / "README.md"
    existing.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(existing)])
    assert exit_info.value.code == 2
    assert "is an existing file; give a folder" in capsys.readouterr().err
    assert existing.read_text() == "not a folder"


def test_a_missing_cuda_device_is_refused_before_any_fit(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--device cuda:" in err and "use --device cpu" in err


def test_quick_run_prints_the_table_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["demo", "--quick", "--no-progress", "--out", str(out), "--n-components", "4"]) == 0
    printed = capsys.readouterr().out
    for model in ("PCA(4)", "linear AE(4)", "deep AE(4)", "VAE(4)", "deep AE(2)", "VAE(2)"):
        assert model in printed
    for column in ("fit s", "test MSE", "score", "FD sample", "FD N(0, I)", "FD midpoint"):
        assert column in printed
    for reference in ("real digits", "mean digit", "pixel average"):
        assert reference in printed
    assert "not a density" in printed  # the autoencoders' score is said to be no density
    # Without progress bars, one line per fit says which model and how it ended.
    assert "[3/6] deep AE(4): AutoencoderTransformer(n_components=4" in printed
    assert "stopped at max_iter=5 before converging (expected with --quick)" in printed
    assert "ConvergenceWarning" not in printed  # said once per fit, not repeated as warnings
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["reconstructions.png", "latent_maps.png", "latent_grids.png", "samples.png"]
    )
    for path in out.iterdir():
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_unknown_command_fails_with_a_message(capsys):
    assert main(["train"]) == 2
    assert "only command is 'demo'" in capsys.readouterr().err

"""docs/results_page.py: commands, paths and wide tables, as a reader of the page uses them."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))

from results_page import write_results_page  # noqa: E402


def render(tmp_path, data, name="bench_x.json"):
    results = tmp_path / "results"
    results.mkdir()
    (results / name).write_text(json.dumps(data))
    return write_results_page(results, tmp_path / "page" / "results.md")


def test_commands_and_options_are_code_so_they_copy_as_typed(tmp_path):
    page = render(
        tmp_path,
        {
            "description": "skvae alone (the loop not run: --no-loop), see `--only NAME`",
            "meta": {"this invocation": "python benchmarks/run.py --quick"},
        },
    )
    assert "the loop not run: `--no-loop`)" in page
    assert "see `--only NAME`" in page  # an existing code span is left alone
    assert "| this invocation | `python benchmarks/run.py --quick` |" in page


def test_paths_of_the_machine_that_ran_a_benchmark_are_cut_to_their_name(tmp_path):
    page = render(
        tmp_path,
        {
            "description": "MNIST train[:60000] from /home/someone/data/mnist.npz, 5 rounds",
            "meta": {"data": "/home/someone/data/mnist.npz", "copy": "the file of ../data"},
            "rows": [{"ratio": "AE / PCA", "url": "https://example.org/a/b"}],
        },
    )
    assert "/home/someone" not in page
    assert "from mnist.npz, 5 rounds" in page
    assert "| data | mnist.npz |" in page
    assert "| copy | the file of data/ |" in page
    assert "| AE / PCA | https://example.org/a/b |" in page


def test_a_table_of_few_rows_and_many_columns_is_shown_turned(tmp_path):
    row = {"model": "skvae", **{f"measure {i}": i for i in range(10)}}
    page = render(tmp_path, {"tables": [{"rows": [row, {**row, "model": "loop"}]}]})
    assert "| model | skvae | loop |" in page
    assert "| measure 9 | 9 | 9 |" in page


def test_a_table_with_about_as_many_rows_as_columns_keeps_its_shape(tmp_path):
    rows = [{"solver": f"s{i}", **{f"measure {j}": j for j in range(9)}} for i in range(6)]
    page = render(tmp_path, {"rows": rows})
    assert "| solver | measure 0 |" in page
    assert "| s5 | 0 |" in page


def test_the_article_section_says_which_article(tmp_path):
    page = render(tmp_path, {"title": "The article's claims"}, name="bench_article.json")
    assert "Understanding Variational Autoencoders (VAEs)" in page

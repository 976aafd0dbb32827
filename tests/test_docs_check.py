"""docs/check_html.py, the check CI runs on the built docs, on small pages written here.

Each bad page holds one fault a reader would meet; the check must name it, and
pass a page without faults. No docs build needed.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "docs" / "check_html.py"
sys.path.insert(0, str(REPO / "docs"))

from check_html import check_page, check_site  # noqa: E402

MATHJAX = '<script defer src="_static/mathjax/tex-chtml.js"></script>'
IMAGE = '<img alt="a figure" src="_images/figure.png">'


def page(body, head=MATHJAX):
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>\n"


GOOD = page(
    '<p>The code <span class="math notranslate nohighlight">\\(z \\in \\mathbb{R}^d\\)</span>,'
    " in prose: 2006\u20132016, a pause \u2014 like this.</p>"
    '<div class="math notranslate nohighlight">\\[\\log p(x) \\ge \\mathrm{ELBO}\\]</div>'
    "<pre>python3 benchmarks/run.py --quick  # costs $5</pre>"
    f'<p><code>--quick</code> {IMAGE}</p><script>var x = "\\\\(not math\\\\)";</script>'
)

BAD = {
    "raw inline math": (page("<p>codes in \\(\\mathbb{R}^d\\)</p>"), "math left as raw TeX"),
    "raw display math": (page("<p>$$\\log p(x)$$</p>"), "math left as raw TeX"),
    "math without MathJax": (
        page('<span class="math">\\(x\\)</span>', head=""),
        "math on a page that loads no MathJax from the site",
    ),
    "MathJax from a CDN": (
        page(
            '<span class="math">\\(x\\)</span>',
            head='<script src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>',
        ),
        "script loaded from the network: https://cdn.jsdelivr.net",
        "math on a page that loads no MathJax from the site",
    ),
    "protocol-relative script": (
        page("", head='<script src="//code.jquery.com/jquery.js"></script>'),
        "script loaded from the network: //code.jquery.com",
    ),
    "stylesheet from a CDN": (
        page("", head='<link rel="stylesheet" href="https://cdn.example.org/x.css">'),
        "stylesheet loaded from the network",
    ),
    "missing image": (
        page('<img src="_images/gone.png">'),
        "image not in the build: _images/gone.png",
    ),
    "image from the network": (
        page('<img src="https://example.org/x.png">'),
        "image loaded from the network",
    ),
    "dash in code": (
        page('<p><code class="literal"><span class="pre">run.py \u2013quick</span></code></p>'),
        "typographic dash or quote in code",
    ),
    "curly quote in code": (
        page("<pre>likelihood=\u2018gaussian\u2019</pre>"),
        "typographic dash or quote in code",
    ),
    "mangled option in prose": (
        page("<p>this invocation: python benchmarks/run.py \u2013quick</p>"),
        "a dash where a command-line option's '--' was",
    ),
}


@pytest.fixture
def site(tmp_path):
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("// MathJax\n")
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "figure.png").write_bytes(b"\x89PNG\r\n")
    return tmp_path


def test_a_page_without_faults_passes(site):
    (site / "index.html").write_text(GOOD)
    assert check_page(site / "index.html") == []


@pytest.mark.parametrize("fault", list(BAD))
def test_each_fault_is_named_with_its_page_and_line(site, fault):
    html, *messages = BAD[fault]
    (site / "bad.html").write_text(html)
    problems = check_page(site / "bad.html")
    assert len(problems) == len(messages), problems
    for problem, message in zip(problems, messages):
        assert problem.startswith(f"{site / 'bad.html'}:")
        assert message in problem


def test_pages_in_subfolders_resolve_images_and_mathjax_from_there(site):
    (site / "guide").mkdir()
    math = '<span class="math">\\(x\\)</span>'
    (site / "guide" / "vae.html").write_text(
        page(
            math + '<img src="../_images/figure.png">',
            head='<script src="../_static/mathjax/tex-chtml.js?v=1"></script>',
        )
    )
    # Paths written as if the page were at the top: neither resolves.
    (site / "guide" / "broken.html").write_text(page(math + IMAGE))
    pages, problems = check_site(site)
    assert [p.name for p in pages] == ["broken.html", "vae.html"]
    assert len(problems) == 2
    assert all("broken.html" in problem for problem in problems)


def test_the_script_fails_ci_on_a_bad_site_and_passes_a_good_one(site):
    (site / "index.html").write_text(GOOD)
    good = subprocess.run([sys.executable, str(CHECK), str(site)], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout
    assert "1 page(s) checked, 0 problem(s)" in good.stdout

    (site / "bad.html").write_text(BAD["raw inline math"][0])
    bad = subprocess.run([sys.executable, str(CHECK), str(site)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "bad.html:1: math left as raw TeX" in bad.stdout

    empty = site / "empty"
    empty.mkdir()
    none = subprocess.run([sys.executable, str(CHECK), str(empty)], capture_output=True, text=True)
    assert none.returncode == 1
    assert "no HTML page" in none.stderr

"""Check the built HTML documentation for what a reader would find broken.

Run after the build, on its output folder::

    python3 docs/check_html.py docs/_build/html

It reads every page (``*.html``, the theme's ``_static`` folder aside) and
prints one line per problem, ``page:line: what``, then exits with 1 if it
found any. A problem is:

- math left as TeX: ``\\(``, ``\\[`` or ``$$`` in a page's text outside the
  math elements MathJax renders, or math elements on a page that loads no
  MathJax from the site itself;
- a script or stylesheet loaded from the network (``https:``, ``http:`` or
  ``//``): the pages are read offline;
- an image whose file is not in the build (or that comes from the network);
- typography in code: a dash or curly quote inside ``code``/``pre``
  (``--quick`` turned into ``–quick`` no longer runs when copied), or a dash
  glued to the start of a word in prose, where a command-line option was.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Elements that never have content (no end tag to wait for).
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
    "param", "source", "track", "wbr",
}  # fmt: skip
_CODE = {"code", "pre", "kbd", "samp", "tt"}
_SKIP = {"script", "style", "textarea"}
_RAW_TEX = re.compile(r"\\\(|\\\[|\$\$")
_TYPOGRAPHY = re.compile("[\u2010-\u2015\u2018\u2019\u201c\u201d]")
# En or em dash (or a hyphen look-alike) at the start of a word: "run.py –quick".
_DASHED_OPTION = re.compile("(?:^|[\\s(\\[])[\u2010-\u2015][A-Za-z]")
_NETWORK = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def _is_network(url):
    return bool(_NETWORK.match(url.strip()))


def _local_file(page, url):
    """The file a relative URL of ``page`` names, or None for a ``data:`` URL."""
    if url.startswith("data:"):
        return None
    return (page.parent / unquote(urlsplit(url).path)).resolve()


class _PageChecker(HTMLParser):
    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack = []  # (tag, is_math) of the open elements
        self.problems = []  # (line, message)
        self.math_elements = 0
        self.local_mathjax = False

    def _problem(self, message):
        self.problems.append((self.getpos()[0], message))

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "script" and attrs.get("src"):
            src = attrs["src"]
            if _is_network(src):
                self._problem(f"script loaded from the network: {src}")
            elif "mathjax" in src.lower():
                path = _local_file(self.page, src)
                self.local_mathjax = self.local_mathjax or (path is not None and path.is_file())
        rel = set(attrs.get("rel", "").lower().split())
        if tag == "link" and attrs.get("href") and _is_network(attrs["href"]):
            if rel & {"stylesheet", "preload", "modulepreload"}:
                self._problem(f"stylesheet loaded from the network: {attrs['href']}")
        if tag == "img":
            src = attrs.get("src", "")
            if not src:
                self._problem("image without a src")
            elif _is_network(src):
                self._problem(f"image loaded from the network: {src}")
            else:
                path = _local_file(self.page, src)
                if path is not None and not path.is_file():
                    self._problem(f"image not in the build: {src}")
        is_math = "math" in attrs.get("class", "").split()
        self.math_elements += is_math
        if tag not in _VOID:
            self.stack.append((tag, is_math))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        # Close up to the matching element; a stray end tag closes nothing.
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        tags = {tag for tag, _ in self.stack}
        if tags & _SKIP or not data.strip():
            return
        snippet = " ".join(data.split())[:60]
        in_math = any(is_math for _, is_math in self.stack)
        if tags & _CODE:
            if _TYPOGRAPHY.search(data):
                self._problem(f"typographic dash or quote in code: {snippet!r}")
            return
        if not in_math and _RAW_TEX.search(data):
            self._problem(f"math left as raw TeX: {snippet!r}")
        if _DASHED_OPTION.search(data):
            self._problem(f"a dash where a command-line option's '--' was? {snippet!r}")


def check_page(page):
    """The problems of one HTML page: a list of ``"page:line: message"``."""
    page = Path(page)
    checker = _PageChecker(page)
    checker.feed(page.read_text(encoding="utf-8", errors="replace"))
    checker.close()
    problems = checker.problems
    if checker.math_elements and not checker.local_mathjax:
        problems.append((1, "math on a page that loads no MathJax from the site"))
    return [f"{page}:{line}: {message}" for line, message in problems]


def check_site(root):
    """The problems of every page under ``root`` (the theme's ``_static`` aside)."""
    root = Path(root)
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.relative_to(root).parts)
    problems = []
    for page in pages:
        problems += check_page(page)
    return pages, problems


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python3 docs/check_html.py BUILT_HTML_FOLDER", file=sys.stderr)
        return 2
    pages, problems = check_site(args[0])
    for problem in problems:
        print(problem)
    if not pages:
        print(f"no HTML page under {args[0]}: build the docs first", file=sys.stderr)
        return 1
    print(f"{len(pages)} page(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Generated parts of the docs: the benchmark results page, and the topic pages' toctree.

The results page's body is written from ``benchmarks/results/``.

The page is generated at every docs build, never typed by hand: each
``*.json`` file in the results folder becomes a section (its tables rendered
as Markdown tables), each ``*.png`` beside it an image. Without results the
page says how to produce them.

A results file is a JSON object; these keys are rendered when present:

- ``title`` (str) and ``description`` (str): the section's heading and text;
- ``meta`` (object): date, machine, versions, threads..., as a two-column table;
- ``tables`` (list of ``{"title": str, "rows": [object, ...]}``) or ``rows``
  (one list of objects): each list of rows a table whose columns are the keys
  of the rows, in first-seen order (a table of more than 8 columns and at
  least twice as many columns as rows is shown turned: a line per column).

Text from the files is shown as a reader can use it: a command (a cell that
starts with ``python``) and a command-line option (``--quick``) in a prose
text are set as code, and a path on the machine that ran a benchmark is
reduced to its last part (``/home/me/data/mnist.npz`` to ``mnist.npz``),
which means something on any other machine.
"""

import json
import re
from pathlib import Path

# What a section says about where its figures come from, beyond its file.
SECTION_NOTES = {
    "bench_article": (
        "The article is J. Rocca and B. Rocca, *Understanding Variational Autoencoders (VAEs)*"
        " (Towards Data Science, 2019), whose argument (PCA, then autoencoders, then the VAE)"
        " the user guide follows; the published figures beside skvae's are Hinton and"
        " Salakhutdinov's (2006, *Science* 313:504)."
    ),
}

# An absolute path or one that climbs out of the repository ("../data/x.npz");
# not a URL ("https://...") nor a fraction ("1/2").
_LOCAL_PATH = re.compile(r"(?<![\w.:/`])(?:/|\.\./)(?:[\w.+-]+/)*([\w.+-]+)/?")
# A command-line option in prose, not already inside a code span.
_OPTION = re.compile(r"(?<![\w`-])(--[a-z][\w-]*)")


def _local_paths(text):
    # A file keeps its name; a folder (no extension) its name and a slash.
    return _LOCAL_PATH.sub(lambda m: m.group(1) + ("" if "." in m.group(1) else "/"), text)


def _prose(text):
    """A description as Markdown: options as code, machine-local paths shortened."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = _OPTION.sub(r"`\1`", _local_paths(parts[i]))
    return "`".join(parts)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    text = _local_paths(str(value)).replace("\n", " ")
    if re.match(r"python3? \S", text):  # a command: code, so it copies as typed
        return f"`{text}`"
    return _prose(text).replace("|", "\\|")


def _table(rows):
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[_cell(row.get(key, "")) for key in columns] for row in rows]
    header = [_cell(key) for key in columns]
    if len(columns) > 8 and len(columns) >= 2 * len(rows):
        # Few rows of many columns: shown turned, one line per column, so
        # that it fits the page's width; the first column names the rows.
        header, cells = (
            [header[0]] + [row[0] for row in cells],
            [[name] + [row[j] for row in cells] for j, name in enumerate(header) if j],
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _section(path, page_dir, headings):
    """The section of one results file; ``headings``: those already on the page."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        data = {"rows": data if isinstance(data, list) else [{"value": data}]}
    heading = str(data.get("title", path.stem))
    if heading in headings:  # two runs of one script (e.g. at other sizes): tell them apart
        heading = f"{heading} ({path.stem})"
    headings.add(heading)
    parts = [f"## {heading}", "", f"From `{path.name}`.", ""]
    if path.stem in SECTION_NOTES:
        parts += [SECTION_NOTES[path.stem], ""]
    if data.get("description"):
        parts += [_prose(data["description"]), ""]
    if isinstance(data.get("meta"), dict):
        parts += [_table([{"": k, "value": v} for k, v in data["meta"].items()]), ""]
    tables = list(data.get("tables", []))
    if isinstance(data.get("rows"), list):
        tables.insert(0, {"rows": data["rows"]})
    for table in tables:
        rows = [r for r in table.get("rows", []) if isinstance(r, dict)]
        if table.get("title"):
            parts += [f"**{_prose(table['title'])}**", ""]
        if rows:
            parts += [_table(rows), ""]
    for image in sorted(path.parent.glob(f"{path.stem}*.png")):
        # Copied beside the page's body, as Sphinx collects images under docs/.
        (page_dir / image.name).write_bytes(image.read_bytes())
        parts += [f"![{image.stem}](/_generated/{image.name})", ""]
    return parts


def write_results_page(results_dir, out):
    """Write the Markdown body of the results page to ``out``; returns its text."""
    results_dir, out = Path(results_dir), Path(out)
    files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    # run.json first: which runs the sections come from, and how long each took.
    files.sort(key=lambda p: p.name != "run.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    if files:
        parts = [f"Generated from {len(files)} file(s) in `benchmarks/results/`.", ""]
        headings = set()
        for path in files:
            parts += _section(path, out.parent, headings)
    else:
        parts = [
            "**No results generated yet.** The benchmark scripts in `benchmarks/` write their",
            "results as JSON into `benchmarks/results/`; run them (e.g.",
            "`python3 benchmarks/bench_pca.py`) and rebuild the docs to fill this page.",
            "",
        ]
    text = "\n".join(parts)
    if not out.exists() or out.read_text() != text:  # unchanged: no rebuild
        out.write_text(text)
    return text


_MYST_TOCTREE = re.compile(r"```\{toctree\}\n(.*?)```", re.S)
_RST_TOCTREE = re.compile(r"^\.\. toctree::\n((?:[ \t]+.*\n|\n)*)", re.M)


def _listed_pages(docs_dir):
    """Names of the documents some toctree of ``docs_dir`` lists, relative to it."""
    listed = set()
    for source in list(docs_dir.rglob("*.md")) + list(docs_dir.rglob("*.rst")):
        relative = source.relative_to(docs_dir)
        if relative.parts[0].startswith("_") or relative.parts[0] == "auto_examples":
            continue
        text = source.read_text()
        blocks = _MYST_TOCTREE.findall(text) + _RST_TOCTREE.findall(text)
        for line in "\n".join(blocks).splitlines():
            entry = line.strip()
            if not entry or entry.startswith(":"):
                continue
            entry = entry.split("<")[-1].rstrip(">").strip()  # "Title <page>"
            if entry.startswith("/"):
                listed.add(entry.lstrip("/"))
            else:
                listed.add((relative.parent / entry).as_posix())
    return listed


def write_topics_toctree(docs_dir, out):
    """Write a toctree of the top-level pages of ``docs_dir`` that no toctree lists.

    Topic pages (``docs/scaling.md``, ...) then join the site as soon as they
    are added, even before an index lists them; the user guide includes this
    toctree. Without such pages the file is empty.
    """
    docs_dir, out = Path(docs_dir), Path(out)
    listed = _listed_pages(docs_dir) | {"index"}
    pages = sorted(
        p.stem
        for p in list(docs_dir.glob("*.md")) + list(docs_dir.glob("*.rst"))
        if p.stem not in listed and not p.stem.startswith(("sg_", "_"))
    )
    text = ""
    if pages:
        entries = "\n".join(f"/{page}" for page in pages)
        text = f"## More topics\n\n```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return text

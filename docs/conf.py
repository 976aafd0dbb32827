"""Sphinx configuration of the skvae documentation.

Build (offline, warnings as errors) from the repository root with::

    python3 -m sphinx -W --keep-going -b html docs docs/_build/html

``SKVAE_DOCS_QUICK=1`` renders the gallery examples listed in ``SLOW_EXAMPLES``
without running them (CI's quick mode); every other page is built in full.
"""

import os
import re
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the skvae of this tree, not whichever one is installed.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import torch  # noqa: E402
from results_page import write_results_page, write_topics_toctree  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import skvae  # noqa: E402
from skvae.exceptions import PosteriorCollapseWarning  # noqa: E402

project = "skvae"
author = "skvae developers"
copyright = "skvae developers"
release = skvae.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# sg_execution_times.rst: left in the tree by builds that wrote the gallery's
# timing page (it loads a table script from a CDN).
exclude_patterns = [
    "_build",
    "_generated",
    "examples/README.rst",
    "**.ipynb_checkpoints",
    "sg_execution_times.rst",
    "auto_examples/sg_execution_times.rst",
]
# The gallery's configuration holds a function, which Sphinx cannot pickle.
suppress_warnings = ["config.cache"]
# No intersphinx: the build must not reach the network. References to numpy,
# scikit-learn or torch objects are written as plain literals.
# Text stays as typed: no "--" turned into an en dash, so a command written in
# prose ("run.py --quick") still copies and runs.
smartquotes = False

# -- math ---------------------------------------------------------------------
# MathJax 3.2.2 is served from the built site (docs/_static/mathjax: the
# tex-chtml bundle, its fonts and its Apache-2.0 licence), so formulas render
# with no network at view time as at build time.
mathjax_path = "mathjax/tex-chtml.js"

# -- MyST ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- autodoc and numpydoc -----------------------------------------------------
autodoc_default_options = {"members": True, "inherited-members": True, "member-order": "groupwise"}
autodoc_typehints = "none"
# One page per class: the page's table of contents lists "score_samples()",
# not "VAETransformer.score_samples()" cut to the sidebar's width.
toc_object_entries_show_parents = "hide"
# numpydoc lists the Attributes section of each class; methods come from
# autodoc's ``:members:`` (inherited ones included), so numpydoc's own member
# tables are off to avoid listing each method twice.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Validation as scikit-learn runs it (sklearn/tests/test_docstrings.py): every
# check except GL01/GL02 (where the summary starts), RT02 (a Returns line may
# name the value) and, because numpydoc applies one set to classes and methods
# alike, ES01/SA01/EX01 (extended summary, See Also, Examples), which
# scikit-learn requires of class docstrings only.
numpydoc_validate = True
numpydoc_validation_checks = {"all", "GL01", "GL02", "RT02", "ES01", "SA01", "EX01"}
# Methods inherited from scikit-learn itself (BaseEstimator, TransformerMixin,
# ...) carry scikit-learn's docstrings, which are not ours to edit.
numpydoc_validation_exclude = {
    r"\.get_params$",
    r"\.set_params$",
    r"\.set_output$",
    r"\.get_metadata_routing$",
    r"\.set_\w+_request$",
}

# The figures' models are small networks on 8x8 digits: one torch thread is as
# fast as several on a free machine, and on a busy one far faster (threads that
# wait for a core stall every step). This is the build process's own setting.
torch.set_num_threads(1)

# -- sphinx-gallery -----------------------------------------------------------
# Examples that take longer than a few seconds on two CPU cores; skipped (shown,
# not run) in CI's quick mode.
SLOW_EXAMPLES = ["plot_grid_search.py"]
QUICK = os.environ.get("SKVAE_DOCS_QUICK", "") not in ("", "0")


def _warnings_are_errors(gallery_conf, fname, when):
    """Run each example with every warning turned into an error.

    A ConvergenceWarning or DivergenceWarning in an example means the example
    is wrong (too few epochs, a bad learning rate); failing the build says so.
    """
    global _saved_filters
    if when == "before":
        _saved_filters = list(warnings.filters)
        warnings.simplefilter("error")
    else:
        warnings.filters[:] = _saved_filters


_saved_filters = []

if QUICK:
    _slow = "|".join(name.replace(".", r"\.") for name in SLOW_EXAMPLES)
    _filename_pattern = rf"/(?!(?:{_slow})$)plot_"
else:
    _filename_pattern = r"/plot_"

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": _filename_pattern,
    "reset_modules": ("matplotlib", _warnings_are_errors),
    "reset_modules_order": "both",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "plot_gallery": "True",
    # The computation-times page loads its table script from a CDN; the docs
    # are read offline.
    "write_computation_times": False,
}

# -- matplotlib plot directive (figures of the user guide) --------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.autolayout": True}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"
# A figure whose fit stops on max_iter, diverges or collapses is a wrong figure:
# these warnings (only scikit-learn and skvae raise them) are errors for the
# whole build, the user guide's figures included.
warnings.filterwarnings("error", category=ConvergenceWarning)  # DivergenceWarning too
warnings.filterwarnings("error", category=PosteriorCollapseWarning)

# -- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = ["_static"]
html_css_files = ["skvae.css"]
# The results page's tables are wide, and it has no section navigation to show.
html_sidebars = {"results": []}
html_show_sourcelink = False

# -- generated pages --------------------------------------------------------------
write_results_page(ROOT / "benchmarks" / "results", DOCS / "_generated" / "results.md")
write_topics_toctree(DOCS, DOCS / "_generated" / "topics.md")


# -- methods inherited from scikit-learn ---------------------------------------
_SKLEARN_ROLE = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<([^`>]*)>)?`")


def _sklearn_role_as_text(match):
    text, target = match.group(1), match.group(2)
    return text if target else text.replace("_", " ")


def _plain_sklearn_refs(app, what, name, obj, options, lines):
    """Print scikit-learn's ``:ref:``/``:term:`` targets in its docstrings as text.

    ``set_output``, ``get_metadata_routing`` and the like come with
    scikit-learn's docstrings, whose references point into scikit-learn's own
    user guide and glossary; without intersphinx they cannot resolve here.
    """
    if (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        lines[:] = [_SKLEARN_ROLE.sub(_sklearn_role_as_text, line) for line in lines]


def _skip_fitted_attributes(app, what, name, obj, skip, options):
    """Leave fitted attributes (``components_``...) to the class's Attributes section.

    autodoc would otherwise list any that are class-level descriptors a second
    time, as members without a docstring of their own.
    """
    if what == "class" and name.endswith("_") and not name.startswith("_"):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_refs, priority=400)
    app.connect("autodoc-skip-member", _skip_fitted_attributes)

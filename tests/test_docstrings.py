"""The docstrings are the API reference: valid numpydoc, every fitted attribute documented.

The Sphinx build (docs/conf.py) runs the same numpydoc checks on every page it
renders; these tests name the faulty docstring without building the docs.
"""

import inspect
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skvae import PCA, AutoencoderTransformer, VAETransformer
from skvae.exceptions import DivergenceWarning, PosteriorCollapseWarning

numpydoc_validate = pytest.importorskip("numpydoc.validate")
numpydoc_docscrape = pytest.importorskip("numpydoc.docscrape")

# scikit-learn's exclusions (sklearn/tests/test_docstrings.py): where the summary
# starts (GL01, GL02), a name on the Returns line (RT02); extended summary, See
# Also and Examples (ES01, SA01, EX01) it requires of class docstrings only, but
# numpydoc's Sphinx validation applies one set to all. Keep in step with
# numpydoc_validation_checks in docs/conf.py.
IGNORED_CHECKS = {"GL01", "GL02", "RT02", "ES01", "SA01", "EX01"}
ESTIMATORS = [PCA, AutoencoderTransformer, VAETransformer]


def _own_public_methods(cls):
    """Public methods of ``cls``, inherited ones included, except scikit-learn's own."""
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("_") or inspect.isclass(member):
            continue
        if (getattr(member, "__module__", None) or "").startswith("sklearn."):
            continue  # set_output, get_params...: scikit-learn's docstrings
        yield name


DOCUMENTED = [(cls, None) for cls in [*ESTIMATORS, DivergenceWarning, PosteriorCollapseWarning]]
DOCUMENTED += [(cls, name) for cls in ESTIMATORS for name in _own_public_methods(cls)]


@pytest.mark.parametrize(
    "cls, method", DOCUMENTED, ids=[f"{c.__name__}.{m or '__doc__'}" for c, m in DOCUMENTED]
)
def test_docstring_passes_numpydoc_validation(cls, method):
    path = f"{cls.__module__}.{cls.__qualname__}" + (f".{method}" if method else "")
    result = numpydoc_validate.validate(path)
    errors = [f"{code}: {message}" for code, message in result["errors"]]
    errors = [e for e in errors if e[:4] not in IGNORED_CHECKS]
    assert not errors, f"{path}:\n" + "\n".join(errors)


def test_every_public_method_is_checked():
    # The methods the neural estimators inherit from their private base class
    # are part of their API and of the check above.
    names = {name for cls, name in DOCUMENTED if cls is VAETransformer}
    assert {"fit", "partial_fit", "transform", "inverse_transform", "sample"} <= names
    assert {"score_samples", "score", "score_samples_iwae"} <= names


def _fitted(cls):
    X = load_digits().data[:300] / 16.0
    if cls is PCA:
        return PCA(n_components=4).fit(X)
    est = cls(n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0)
    # Three epochs: stopping on max_iter is expected, and a collapsed posterior
    # possible; neither changes which attributes a fit sets.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    unexpected = [
        w
        for w in caught
        if not issubclass(w.category, (ConvergenceWarning, PosteriorCollapseWarning))
    ]
    assert not unexpected, [str(w.message) for w in unexpected]
    return est


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_fitted_attribute_is_documented(cls):
    est = _fitted(cls)
    fitted = {
        name
        for name in dir(est)
        if name.endswith("_") and not name.startswith("_") and hasattr(est, name)
    }
    documented = {attr.name for attr in numpydoc_docscrape.ClassDoc(cls)["Attributes"]}
    assert fitted, "no fitted attribute found"
    assert fitted <= documented, f"undocumented: {sorted(fitted - documented)}"

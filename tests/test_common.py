"""scikit-learn's common estimator checks, run on small, fast instances of every estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import PCA, AutoencoderTransformer, VAETransformer

SMALL = dict(hidden_layer_sizes=(8,), max_iter=20, device="cpu")

# Every estimator as users construct it by default, and the neural ones also
# small and fast (few epochs, small layers), as a test suite would use them.
ESTIMATORS = [
    PCA(),
    AutoencoderTransformer(),
    AutoencoderTransformer(**SMALL),
    VAETransformer(),
    VAETransformer(**SMALL),
    VAETransformer(likelihood="gaussian", noise_variance="learned", kl_warmup=2, **SMALL),
]

FLOAT32_ROUNDING = (
    "The networks compute in float32, whose matrix kernels round a row differently "
    "(by an ulp or two) depending on the rows beside it; this check's atol=1e-7 is "
    "below float32's ulp at 1, so it passes or fails with the seed. test_inputs.py "
    "checks that transform is row-invariant to float32 precision."
)


def expected_failed_checks(estimator):
    """{check name: written reason} of the checks that ``estimator`` fails by design."""
    if isinstance(estimator, PCA):
        return {}
    return {"check_methods_subset_invariance": FLOAT32_ROUNDING}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)

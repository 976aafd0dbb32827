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

# estimator class name -> {check name: written reason}; none is needed.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's common estimator checks, run on small, fast instances of every estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import PCA

# One entry per estimator; add new estimators here, each with settings that make
# its checks fast (few epochs, small layers, device="cpu").
ESTIMATORS = [
    PCA(),
]

# estimator class name -> {check name: written reason}; PCA needs none.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

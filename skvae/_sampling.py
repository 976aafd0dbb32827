"""Samples in the user's units: ``sample``'s output container, and sampling through a Pipeline.

``sample`` draws rows of X, so under ``set_output(transform="pandas")`` (or
``"polars"``) they come back as a DataFrame with X's feature names, as the
transformed output does with the output's. :func:`sample_pipeline` carries a
pipeline's samples back through the ``inverse_transform`` of the steps before
its generative last step, into the units of the pipeline's input.
"""

import numpy as np
from sklearn import get_config
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

__all__ = ["sample_pipeline"]


def _output_container(estimator):
    """'default', 'pandas' or 'polars': the estimator's ``set_output``, else sklearn's config."""
    config = getattr(estimator, "_sklearn_output_config", {}).get("transform")
    return config or get_config()["transform_output"]


def _feature_names(estimator, n_features):
    """The feature names ``estimator`` was fitted with; sklearn's ``x0``, ``x1``, ... for none."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return [f"x{i}" for i in range(n_features)]
    return [str(name) for name in names]


def _in_container(X, container, columns):
    """An ndarray of rows as a DataFrame of ``container`` ('pandas' or 'polars'), or as is."""
    if container == "pandas":
        import pandas as pd

        return pd.DataFrame(X, columns=columns)
    if container == "polars":
        import polars as pl

        return pl.DataFrame(X, schema=columns, orient="row")
    return X


def as_input_container(X, estimator):
    """Return rows of X (an ndarray) in the container ``estimator``'s ``set_output`` asks for.

    A DataFrame (pandas or polars) gets the feature names the estimator was
    fitted with (``x0``, ``x1``, ... when X had none); otherwise X is returned.
    """
    if not isinstance(X, np.ndarray):
        return X
    return _in_container(X, _output_container(estimator), _feature_names(estimator, X.shape[1]))


def _inverse_step(name, step, last):
    """The step's ``inverse_transform``, or a ValueError naming the step that cannot invert."""
    if isinstance(step, FunctionTransformer) and step.func is not None:
        if step.inverse_func is None:
            raise ValueError(
                f"Pipeline step {name!r} (FunctionTransformer(func={step.func.__name__})) has "
                "no inverse_func, so sample_pipeline cannot map samples back through it. "
                "Pass inverse_func, or sample the steps after it yourself."
            )
    if not hasattr(step, "inverse_transform"):
        raise ValueError(
            f"Pipeline step {name!r} ({type(step).__name__}) has no inverse_transform, so "
            f"sample_pipeline cannot map the samples of {last!r} back through it into the "
            "pipeline's input units. Use steps that invert (e.g. StandardScaler, "
            "MinMaxScaler, PCA), or call the last step's sample() and map back yourself."
        )
    return step.inverse_transform


def sample_pipeline(pipeline, n_samples=1, random_state=None, **sample_params):
    """Draw samples from a fitted pipeline's generative last step, in the pipeline's input units.

    The last step's ``sample`` draws rows of what it was fitted on; the
    ``inverse_transform`` of each step before it, last to first, carries them
    back to the units of the data the pipeline was fitted on (e.g. a
    ``StandardScaler`` puts back the columns' means and scales).

    Parameters
    ----------
    pipeline : Pipeline
        A fitted :class:`~sklearn.pipeline.Pipeline` whose last step has a
        ``sample`` method (:class:`~skvae.VAETransformer`,
        :class:`~skvae.AutoencoderTransformer`, :class:`~skvae.PCA`). An
        estimator that is not a pipeline is sampled directly.
    n_samples : int, default=1
        Number of samples to draw.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw, passed to the last step's ``sample``.
    **sample_params : dict
        Further keyword arguments of the last step's ``sample``, e.g.
        ``observation_noise=False``.

    Returns
    -------
    X_new : ndarray or DataFrame of shape (n_samples, n_features_in)
        Samples in the units of the pipeline's input. A DataFrame, with the
        pipeline's input feature names, when the last step's output is set to
        ``"pandas"`` or ``"polars"`` (``pipeline.set_output(transform="pandas")``).

    Raises
    ------
    ValueError
        When the last step has no ``sample``, or a step before it cannot invert
        (no ``inverse_transform``, or a ``FunctionTransformer`` without
        ``inverse_func``); the message names the step.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skvae import PCA, sample_pipeline
    >>> X = np.random.default_rng(0).normal(100.0, 5.0, size=(50, 4))
    >>> pipe = make_pipeline(StandardScaler(), PCA(2)).fit(X)
    >>> sample_pipeline(pipe, 3, random_state=0).shape
    (3, 4)
    """
    if not isinstance(pipeline, Pipeline):
        steps = [(type(pipeline).__name__, pipeline)]
    else:
        steps = list(pipeline.steps)
    last_name, last = steps[-1]
    if not hasattr(last, "sample"):
        raise ValueError(
            f"The last step of the pipeline, {last_name!r} ({type(last).__name__}), has no "
            "sample method. sample_pipeline needs a generative last step, such as "
            "VAETransformer, AutoencoderTransformer or PCA."
        )
    check_is_fitted(last)
    inverses = [
        _inverse_step(name, step, last_name)
        for name, step in reversed(steps[:-1])
        if step is not None and step != "passthrough"
    ]
    X = last.sample(n_samples, random_state=random_state, **sample_params)
    for inverse in inverses:
        X = inverse(np.asarray(X))  # a DataFrame's values: the inverses want the step's units
    first = next((step for _, step in steps if step is not None and step != "passthrough"), last)
    X = np.asarray(X)
    return _in_container(X, _output_container(last), _feature_names(first, X.shape[1]))

"""Callbacks for the neural estimators' ``callbacks`` parameter: loggers of each epoch.

See :mod:`skvae.neural._callbacks` for what a callback is; any callable
``f(estimator, epoch, measures)`` is one too.
"""

from .neural._callbacks import CSVLogger, JSONLogger, TensorBoard

__all__ = ["CSVLogger", "JSONLogger", "TensorBoard"]

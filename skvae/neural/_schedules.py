"""Learning-rate schedules: the rate of each epoch from ``learning_rate_schedule``.

- ``"constant"``: ``learning_rate`` throughout; the optimizer's rate is never touched.
- ``"plateau"``: scikit-learn's MLP ``learning_rate="adaptive"`` rule on skvae's
  stopping rule: when the monitored loss has not improved by ``tol`` for more than
  ``n_iter_no_change`` epochs, the rate is divided by :data:`PLATEAU_DIVISOR`
  and the count of epochs without improvement starts again, instead of training
  stopping; after :data:`PLATEAU_REDUCTIONS` reductions the rule stops training.
- a callable ``f(epoch) -> factor``: the rate of epoch ``epoch`` (counted from 0
  over all of the estimator's epochs, continued fits included) is
  ``learning_rate * f(epoch)``.
"""

import math
from numbers import Real

from .._utils.validation import Constraint

PLATEAU_DIVISOR = 5.0
PLATEAU_REDUCTIONS = 4

SCHEDULES = ("constant", "plateau")
# The constraint of ``learning_rate_schedule`` besides the names above.
SCHEDULE_FUNCTION = Constraint(callable, "a callable epoch -> factor")


class Schedule:
    """The learning rate of each epoch, set on the optimizer at the epoch's start."""

    def __init__(self, spec, learning_rate, estimator_name="the estimator"):
        self.spec, self.learning_rate, self.name = spec, learning_rate, estimator_name
        self.reductions = 0  # "plateau": how many times the rate was divided

    def start_epoch(self, optimizer, epoch):
        """Set the rate of ``epoch`` on every parameter group of ``optimizer``."""
        if self.spec == "constant":
            return  # the rate the optimizer was made with, untouched
        if self.spec == "plateau":
            factor = PLATEAU_DIVISOR**-self.reductions
        else:
            factor = self.spec(epoch)
            if isinstance(factor, bool) or not isinstance(factor, Real) or not factor > 0:
                raise ValueError(
                    f"learning_rate_schedule must return a positive float factor of "
                    f"learning_rate for every epoch; {self.name} got {factor!r} at epoch "
                    f"{epoch}. Return e.g. 1.0 for the full rate."
                )
            if not math.isfinite(factor):
                raise ValueError(
                    f"learning_rate_schedule returned {factor!r} at epoch {epoch}; "
                    f"{self.name} needs a finite factor of learning_rate."
                )
        for group in optimizer.param_groups:
            group["lr"] = self.learning_rate * float(factor)

    def on_plateau(self):
        """Whether the rate was lowered, so that training goes on instead of stopping."""
        if self.spec != "plateau" or self.reductions >= PLATEAU_REDUCTIONS:
            return False
        self.reductions += 1
        return True

    def state_dict(self):
        return {"reductions": self.reductions}

    def load_state_dict(self, state):
        self.reductions = state["reductions"]

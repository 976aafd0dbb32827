"""The progress bar of a fit: which estimator it is, and why it stopped."""

from tqdm.auto import tqdm


def progress_label(estimator, n_features):
    """A label that tells two estimators in one script apart: class and network widths.

    ``AutoencoderTransformer 784-512-256-32`` (input, hidden and latent widths) for
    the MLP; the input shape for convolutional networks; the module's class for
    custom networks.
    """
    name = type(estimator).__name__
    if getattr(estimator, "encoder", None) is not None:
        encoder = estimator.encoder
        kind = encoder.__name__ if isinstance(encoder, type) else type(encoder).__name__
        network = f"{kind}->{estimator.n_components}"
    elif getattr(estimator, "architecture", "mlp") == "conv":
        shape = "x".join(str(s) for s in (estimator.input_shape or (n_features,)))
        network = f"conv {shape}->{estimator.n_components}"
    else:
        widths = (n_features, *estimator.hidden_layer_sizes, estimator.n_components)
        network = "-".join(str(w) for w in widths)
    if getattr(estimator, "precision", "float32") != "float32":
        network += f" {estimator.precision}"
    return f"{name} {network}"


class Progress:
    """A tqdm bar over the epochs of one call that says, when it closes, why training
    ended short of ``max_iter``: the bar would otherwise freeze at, say, 16%."""

    def __init__(self, total, desc, verbose):
        self.bar = tqdm(total=total, desc=desc, disable=not verbose, leave=True, unit="epoch")
        self.postfix = ""
        self.reason = None

    def skip(self, n_epochs):
        """Count epochs run before a checkpoint was written."""
        self.bar.update(n_epochs)

    def epoch_done(self, loss, val_loss=None):
        self.bar.update(1)
        self.postfix = f"loss={loss:.4g}"
        if val_loss is not None:
            self.postfix += f", val_loss={val_loss:.4g}"
        self.bar.set_postfix_str(self.postfix, refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        reason = self.reason
        if exc_type is not None:
            reason = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        if reason is not None:
            self.bar.set_postfix_str(", ".join(filter(None, (self.postfix, reason))), refresh=False)
        self.bar.close()

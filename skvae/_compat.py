"""Module names of skvae 0.2, whose modules all sat in one flat folder.

A pickle names the module of each class it holds: an estimator pickled by
skvae 0.2 names ``skvae._pca``, ``skvae._autoencoder`` or ``skvae._vae``, and
the network inside it ``skvae._modules``. Importing one of those names gives
the module's new home, so such pickles still find their classes. The finder
answers for these four names only, and imports nothing until one is asked for.
"""

import importlib
import importlib.abc
import importlib.util
import sys

OLD_NAMES = {
    "skvae._pca": "skvae.decomposition._pca",
    "skvae._autoencoder": "skvae.neural._autoencoder",
    "skvae._vae": "skvae.neural._vae",
    "skvae._modules": "skvae.neural._modules",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name not in OLD_NAMES:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(OLD_NAMES[spec.name])

    def exec_module(self, module):
        pass  # the new module is already executed


def install():
    """Put the finder on ``sys.meta_path`` once (importing skvae twice adds none)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())

"""Module names of skvae 0.2, whose modules all sat in one flat folder.

A pickle names the module of each class it holds: an estimator pickled by
skvae 0.2 names ``skvae._pca``, ``skvae._autoencoder`` or ``skvae._vae``, and
the network inside it ``skvae._modules``. Those names stay importable as
aliases of the modules' new homes, so such pickles still load. The aliases are
resolved when first imported, so that importing skvae does not load torch.
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


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module at its new home (the same module object)."""

    def find_spec(self, name, path=None, target=None):
        if name in OLD_NAMES:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(OLD_NAMES[spec.name])

    def exec_module(self, module):
        pass  # the new home's module is already executed


if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
    sys.meta_path.append(_OldNames())

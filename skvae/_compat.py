"""Module names of skvae 0.2, whose modules all sat in one flat folder.

A pickle names the module of each class it holds: an estimator pickled by
skvae 0.2 names ``skvae._pca``, ``skvae._autoencoder`` or ``skvae._vae``, and
the network inside it ``skvae._modules``. Those names stay importable as
aliases of the modules' new homes, so such pickles still load.
"""

import sys

from .decomposition import _pca
from .neural import _autoencoder, _modules, _vae

OLD_NAMES = {
    "skvae._pca": _pca,
    "skvae._autoencoder": _autoencoder,
    "skvae._vae": _vae,
    "skvae._modules": _modules,
}
for _name, _module in OLD_NAMES.items():
    sys.modules.setdefault(_name, _module)

"""Pickling and the hooks of :func:`skvae.load` for the neural estimators: the
network travels as its skeleton and its tensors as numpy data, never as
``torch.save`` bytes, so unpickling calls no ``torch.load``."""

import copy
import inspect

import torch

from .._persistence import (
    ModuleRecord,
    check_version,
    fill,
    module_tensors,
    records_to_tensors,
    tensors_to_records,
)
from .._utils.devices import restore_device
from ._networks import build_network, pca_skeleton, starts_from_pca
from ._steps import make_optimizer


class NetworkStateMixin:
    """``__getstate__``/``__setstate__`` and the save/load hooks of a neural estimator."""

    def __getstate__(self):
        """The state as plain data: the network's skeleton (its modules on the meta
        device, no values), its weights and the optimizer's state as numpy arrays.

        Unpickling runs no ``torch.load``: the arrays are numpy's, and what the
        pickle imports is the classes of the modules, as for any pickle.
        """
        from .. import __version__

        state = dict(super().__getstate__())  # a copy: popping must not touch self
        module, optimizer = state.pop("module_", None), state.pop("optimizer_", None)
        if module is not None:
            state["_module"] = ModuleRecord(module)
        # A user's module instance among the parameters, as data too.
        for key in ("encoder", "decoder"):
            if isinstance(state.get(key), torch.nn.Module):
                state[key] = ModuleRecord(state[key])
        if "_fitted_architecture" in state:
            state["_fitted_architecture"] = {
                k: ModuleRecord(v) if isinstance(v, torch.nn.Module) else v
                for k, v in state["_fitted_architecture"].items()
            }
        if optimizer is not None:
            state["_optimizer_state"] = tensors_to_records(optimizer.state_dict())
        if "device_" in state:
            state["device_"] = str(state["device_"])
        state["_skvae_version"] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        name = type(self).__name__
        version = state.pop("_skvae_version", None)
        if "_torch_state" in state:
            raise ValueError(
                f"This {name} was pickled by skvae {version or '0.3.0.dev0 or earlier'}, whose "
                "pickles hold the network as torch.save bytes, which load only by running "
                "code from the file; this version does not load them. Fit the estimator "
                "again, or load it with the version that wrote it and save it with "
                "est.save (or pickle it) from this version."
            )
        from ._base import caller_stacklevel  # _base builds on this module

        # One frame deeper than here: the functions below warn.
        stacklevel = caller_stacklevel() + 1
        check_version(version, name, stacklevel=stacklevel + 1)
        state = restore_device(state, name, stacklevel=stacklevel)
        record = state.pop("_module", None)
        optimizer_state = state.pop("_optimizer_state", None)
        for key in ("encoder", "decoder"):
            if isinstance(state.get(key), ModuleRecord):
                state[key] = state[key].module()
        if "_fitted_architecture" in state:
            state["_fitted_architecture"] = {
                k: v.module() if isinstance(v, ModuleRecord) else v
                for k, v in state["_fitted_architecture"].items()
            }
        # Parameters added since the pickle was written (the training ones of 0.3) take
        # their defaults, so that get_params, clone and fit work on it.
        for key, param in inspect.signature(type(self).__init__).parameters.items():
            if param.default is not inspect.Parameter.empty:
                state.setdefault(key, param.default)
        super().__setstate__(state)
        if record is not None:
            self._load_network(record.module(), optimizer_state)

    def _load_network(self, module, optimizer_state):
        """Put ``module`` on ``device_``; rebuild the optimizer from ``optimizer_state``."""
        self.module_ = module.to(self.device_).eval()
        if optimizer_state is None:
            return
        # One group: Adam (or, saved by an older skvae, Adam with coupled L2 decay);
        # two: AdamW's decayed weights and the rest. load_state_dict sets their rates.
        self.optimizer_ = make_optimizer(
            self.module_,
            self.learning_rate,
            self.weight_decay,
            self.epsilon,
            decoupled=len(optimizer_state["param_groups"]) == 2,
        )
        optimizer_state = records_to_tensors(optimizer_state)
        for saved, fresh in zip(optimizer_state["param_groups"], self.optimizer_.param_groups):
            # How the step is computed follows this device, not the one that saved it.
            for key in ("fused", "foreach", "capturable"):
                if key in fresh:
                    saved[key] = fresh[key]
        self.optimizer_.load_state_dict(optimizer_state)

    def _persistent_state(self, fitted):
        """For :func:`skvae.load`: the network and optimizer as tensors, out of ``fitted``."""
        module, optimizer = fitted.pop("module_", None), fitted.pop("optimizer_", None)
        if module is None:
            return {}
        return {"module": module_tensors(module), "optimizer": optimizer.state_dict()}

    def _restore_persistent_state(self, state):
        if "module" not in state:
            return
        module = fill(self._network_skeleton(), state["module"])
        self._load_network(module, tensors_to_records(state["optimizer"]))

    def _network_skeleton(self):
        """The fitted network's modules, built from the fitted parameters without data.

        skvae's layers are on the meta device; a user's encoder or decoder class is
        called with its arguments, as in fit.
        """
        proxy = copy.copy(self)
        proxy.__dict__.update(self._fitted_architecture)
        width = self.n_features_in_
        zeros = torch.zeros(width)  # (n_features,): overwritten by the saved buffers

        def make(trunk, trunk_width, decoder):
            return self._network_class(trunk, trunk_width, proxy.n_components, decoder)

        if starts_from_pca(proxy):
            return pca_skeleton(proxy, width)
        stub = torch.empty(0, width, device="meta")
        return build_network(proxy, stub, torch.Generator().manual_seed(0), make, zeros, zeros)

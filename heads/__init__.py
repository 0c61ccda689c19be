"""Light classification heads on clip embeddings, with the scikit-learn estimator API.

Every head takes its hyper-parameters in ``__init__``, learns with ``fit(X, y)`` (integer labels,
any subset of classes) and answers ``predict_proba(X)`` with one column per entry of ``classes_``.
Adding a head is one module in this folder plus one line in ``REGISTRY``
(``name: ("module", "Class")``, imported lazily so torch loads only for heads that need it).
"""

from __future__ import annotations

import importlib

from heads.ensemble import blend, select_members
from heads.metrics import normalized_auc
from heads.selection import select_by_validation

REGISTRY = {
    "linear": ("heads.linear", "LinearHead"),
    "knn": ("heads.knn", "KNNHead"),
    "prototype": ("heads.prototype", "PrototypeHead"),
}


def make_head(name: str, **params):
    """Build the head registered as ``name`` with hyper-parameters ``params``."""
    if name not in REGISTRY:
        raise KeyError(f"unknown head {name!r}; known: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(**params)


__all__ = ["REGISTRY", "blend", "make_head", "normalized_auc", "select_by_validation", "select_members"]

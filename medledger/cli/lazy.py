"""Modules imported on first use, so that ``medledger --help`` does not load web3 and friends.

Command modules write::

    if TYPE_CHECKING:
        from medledger import consent
    else:
        consent = lazy("medledger.consent")

and use ``consent.grant(...)`` as usual: the import happens at the first attribute access (and
mypy sees the real module).
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)


def lazy(name: str) -> Any:
    """A stand-in for module ``name`` that imports it when an attribute is first read."""
    return _LazyModule(name)

"""Where medledger keeps its files: the one home of the ``MEDLEDGER_HOME`` rule.

``$MEDLEDGER_HOME`` (an empty value counts as unset), else ``~/.medledger``. Under it: ``keys/``
(keystores), ``deployments/`` (one JSON file per chain), ``node/`` (the local chain and IPFS node),
``cache/`` (journal of writes in flight, compiled artifacts), ``index/`` (the event index's SQLite files,
unless ``$MEDLEDGER_INDEX_URL`` names another database) and ``config.toml``. Each can be moved
by the configuration (:mod:`medledger.config`); this module only answers the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME_ENV = "MEDLEDGER_HOME"
#: The event index's database (a PostgreSQL URL or a SQLite path) instead of the file under ``index/``.
INDEX_URL_ENV = "MEDLEDGER_INDEX_URL"


def medledger_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$MEDLEDGER_HOME`` (empty counts as unset), else ``~/.medledger``; ``~`` expanded."""
    env = os.environ if environ is None else environ
    return Path(env.get(HOME_ENV) or "~/.medledger").expanduser()


def keys_dir(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "keys"


def deployments_dir(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "deployments"


def node_dir(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "node"


def cache_dir(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "cache"


def index_dir(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "index"


def config_file(home: Path | None = None) -> Path:
    return (home or medledger_home()) / "config.toml"

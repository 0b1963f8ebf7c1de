"""Where the engine keeps its files: one user data directory, overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "EASYTUNE_HOME"  # the whole data directory (corpus cache, models, database)
CORPUS_ENV = "EASYTUNE_CORPUS"  # a specific corpus directory to use instead of the cached build


def data_home() -> Path:
    """$EASYTUNE_HOME, else $XDG_DATA_HOME/easytune, else ~/.local/share/easytune."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "easytune"


def corpus_cache_dir() -> Path:
    return data_home() / "corpus"

"""Where Optuna studies live: one storage URL for `arbframe tune` and `arbframe report`."""

from __future__ import annotations

import os
from pathlib import Path

from arbframe.stores import STATE_DIR_ENV

DATABASE_URL_ENV = "ARBFRAME_DATABASE_URL"


def study_storage(url: str | None) -> str:
    """``--storage URL`` if given, else ``$ARBFRAME_DATABASE_URL``, else
    ``sqlite:///$ARBFRAME_STATE_DIR/studies.db`` (the state dir defaults to ``.arbframe``).
    A ``postgresql://`` URL gets SQLAlchemy's psycopg 3 driver, the one the project uses."""
    url = url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        state_dir = Path(os.environ.get(STATE_DIR_ENV) or ".arbframe")
        return f"sqlite:///{state_dir / 'studies.db'}"
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url

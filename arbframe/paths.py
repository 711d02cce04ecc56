"""Checks that an output path can be written, made before a run starts, not after it."""

from __future__ import annotations

import os
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def output_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot become (or be) a directory we write files into, or None."""
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    return _writable_ancestor_problem(path)


def output_file_problem(path: Path) -> str | None:
    """Why a file cannot be created or appended at ``path``, or None."""
    if path.is_dir():
        return f"{path} is a directory, not a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    return _writable_ancestor_problem(path.parent)


def _writable_ancestor_problem(path: Path) -> str | None:
    existing = _nearest_existing(path)
    if not existing.is_dir():
        return f"{existing} is a file, so {path} cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create files in {existing} (permission denied)"
    return None

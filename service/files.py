"""Folders and files that hold people's data are ours alone: 0700 folders, 0600 files.

The data folder holds the SQLite database (names, email bodies, encrypted grants), the
generated key and the outbox; under a default umask of 022 they would be world-readable.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; a folder we create is never wider.

    An existing folder is left as the operator made it (it may be a mount point)."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file at `path` unless it exists (its folder made private)."""
    ensure_private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))

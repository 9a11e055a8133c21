"""Files the server writes with the agency's data are readable by the server's own user only.

Rules:
- The SQLite database (and the ``-wal``, ``-shm`` and ``-journal`` files SQLite keeps beside it),
  uploaded archives, chat files, backups and rendered reports are created with mode 0600, the
  folders that hold them with 0700, whatever the process's umask.
- SQLite and ``pg_dump`` create their files with the umask's mode (0644), and SQLite gives its
  ``-wal``/``-shm``/``-journal`` files the mode of the database file: so the database or backup file
  is created here first, private, and the program writes into it.
- Data folders and files of an existing install that are wider are narrowed when the server starts
  (files and folders owned by another user are left alone). A backup's folder is created private
  but an existing one (a home folder) is left as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def narrow(path: str | os.PathLike, mode: int) -> None:
    """Take away every permission beyond *mode* from *path* when it exists and is ours."""
    try:
        info = os.stat(path)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & ~mode:
            os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
    except OSError:
        pass


def private_dir(path: str | os.PathLike, narrow_existing: bool = True) -> Path:
    """Create the folder *path* and its missing parents with mode 0700; an existing *path* of ours
    is narrowed to 0700 unless *narrow_existing* is false."""
    path = Path(path)
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
        os.chmod(folder, PRIVATE_DIR)  # the umask may have taken bits away; never added any
    if narrow_existing and not missing:
        narrow(path, PRIVATE_DIR)
    return path


def create_private(path: str | os.PathLike) -> Path:
    """Make sure the file *path* exists (empty when new) with mode 0600, for a program that then
    writes into it and keeps the mode (SQLite, ``pg_dump``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return Path(path)


def write_private(path: str | os.PathLike, data: bytes) -> None:
    """Write *data* to the file *path* (created or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), PRIVATE_FILE)
        handle.write(data)


def private_sqlite_file(path: str | os.PathLike) -> None:
    """Create the SQLite database file *path* private before SQLite does, and narrow an existing
    one and its side files to 0600."""
    path = Path(path)
    if not path.parent.is_dir():
        return  # SQLite will say what is wrong with the path
    if not path.exists():
        create_private(path)
    for name in (str(path), *(str(path) + suffix for suffix in SQLITE_SIDE_FILES)):
        narrow(name, PRIVATE_FILE)

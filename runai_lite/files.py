"""Private files and directories: how runai-lite creates what only their owner may read.

A directory is 0700 and must belong to the caller and not be writable by others; a file is 0600,
opened relative to its directory's descriptor and never through a symbolic link; a replacement is
written beside the file and renamed over it. `HOME_ENV` names the variable that moves a user's
runai-lite home (the embedded mode's state and the CLI's settings).

Standard library and `errors` only: the CLI reads its settings through this without loading a backend.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

from .errors import OperationalError, UserError

HOME_ENV = "RUNAI_LITE_HOME"
DIR_MODE = 0o700
FILE_MODE = 0o600


def _account(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_own_private_dir(path: Path) -> None:
    """Refuse a directory that is a link, not a directory, owned by another account or writable by
    others; tighten one that is merely readable by others to 0700."""
    info = os.lstat(path)
    me = os.geteuid()
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(f"the runai-lite home {path} is not a directory", f"remove it, or choose another home with {HOME_ENV}")
    if info.st_uid != me:
        raise UserError(f"the runai-lite home {path} belongs to {_account(info.st_uid)}, not to you ({_account(me)})",
                        f"a daemon serves only its owner's home: unset {HOME_ENV} to use your own, "
                        f"or run the command as {_account(info.st_uid)}")
    if info.st_mode & 0o022:
        raise UserError(f"the runai-lite home {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})",
                        f"make it private: chmod 700 {path}")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE, follow_symlinks=False)


def ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    check_own_private_dir(path)


def _refused_link(path: Path) -> OperationalError:
    return OperationalError(f"refusing to open {path}: it is a symbolic link (or not a regular file)",
                            "runai-lite never follows links in its directories; remove it and try again")


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """Open (creating 0600) and return the descriptor; an existing file is tightened to 0600.

    Opened relative to its directory's descriptor (`openat`), neither the directory nor the file
    through a symbolic link, and only a regular file with one name: a link planted in a home cannot
    make the daemon write to (or chmod) a file elsewhere."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refused_link(path) from None
        raise
    finally:
        os.close(dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise _refused_link(path)
    if stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600: a new file written beside it (never
    through a link: created exclusively, relative to the directory's descriptor), then renamed."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        tmp = f".{path.name}.{os.getpid()}.tmp"
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE,
                     dir_fd=dir_fd)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def current_umask() -> int:
    """This process's umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

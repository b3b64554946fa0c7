"""Crash-safe file writes shared by checkpoints, submission files and denoised photos (pure Python).

:func:`atomic_write` writes to ``<name>.tmp.<pid>`` in the target's folder, flushes it to disk and renames it onto
the target with ``os.replace`` (atomic on POSIX), then syncs the folder: a process killed at any moment leaves
either the previous complete file or an orphan ``*.tmp.*`` that nothing loads -- never a truncated file.
"""
import contextlib
import os
import shutil

TEMP_MARK = '.tmp.'


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _publish(temp_path, path):
    """Atomically give the complete ``temp_path`` its final name ``path`` (one rename, then a directory fsync)."""
    os.replace(temp_path, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def remove_quietly(path):
    with contextlib.suppress(OSError):
        os.remove(path)


def atomic_write(path, write, mode='wb'):
    """Call ``write(handle)`` on a temporary file next to ``path`` (its folder is created), fsync it and publish
    it as ``path``; on any error the temporary file is removed and the error propagates. Returns ``path``."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp_path = f'{path}{TEMP_MARK}{os.getpid()}'
    try:
        with open(temp_path, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temp_path, path)
    except BaseException:
        remove_quietly(temp_path)
        raise
    return path


def atomic_copy(source, path):
    """Copy ``source`` to ``path`` with :func:`atomic_write`."""
    with open(source, 'rb') as handle:
        return atomic_write(path, lambda target: shutil.copyfileobj(handle, target))

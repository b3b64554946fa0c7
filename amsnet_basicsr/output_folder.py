"""Output folders a command owns: it deletes or overwrites only what it can prove it wrote (pure Python).

A command that writes a folder of results (``amsnet-train-folder --out``) takes it with :func:`take`, naming the
entries it writes there (a fixed list of top-level names), its settings and a fingerprint of its inputs:

* an absent or empty folder is created and claimed: the record ``.amsnet_owner.json`` (written atomically before
  anything else, so an interrupted run is on record too) names the command, its settings, its inputs and those of
  its entries that did not exist yet;
* a folder with a record of the same command is continued with ``mode='resume'`` only when settings and inputs are
  the record's (else :class:`~amsnet_basicsr.errors.SetupError` naming each difference), and with ``mode='force'``
  the recorded entries alone are deleted (files a user put beside them stay), then the folder is claimed anew;
* any other folder is refused, and nothing is written into it.

While the command runs it holds a lock (``fcntl.flock`` on ``.amsnet_owner.lock``); its child processes inherit the
lock (:attr:`OwnedFolder.lock_fd`), so two runs never share a folder, even while an orphaned child winds down.
"""
import fcntl
import json
import os
import os.path as osp
import shutil

from .errors import SetupError
from .files import atomic_write

RECORD = '.amsnet_owner.json'
LOCK = '.amsnet_owner.lock'


class OwnedFolder:
    """A folder this process owns: its path, its record, and the open lock file (keep it open while writing)."""

    def __init__(self, path, record, lock_handle):
        self.path, self.record, self._lock = path, record, lock_handle

    @property
    def lock_fd(self):
        """The lock's file descriptor: pass it to a child process (``pass_fds``) that writes into the folder."""
        return self._lock.fileno()

    def join(self, *parts):
        return osp.join(self.path, *parts)

    def release(self):
        self._lock.close()


def read_record(path):
    """The record of ``path``, or None when it has none (or an unreadable one: then it is nobody's)."""
    try:
        with open(osp.join(path, RECORD), encoding='utf-8') as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def differences(record, settings, inputs):
    """Human-readable differences between a record and this run's settings and inputs (empty when they match)."""
    found = [f'{key} was {record["settings"].get(key)!r}, now {value!r}'
             for key, value in settings.items() if record['settings'].get(key) != value]
    before, now = dict(record['inputs']), dict(inputs)
    for label, names in (('added', sorted(set(now) - set(before))), ('removed', sorted(set(before) - set(now))),
                         ('changed', sorted(name for name in set(now) & set(before) if now[name] != before[name]))):
        if names:
            found.append(f'inputs {label}: {", ".join(names[:3])}{" ..." if len(names) > 3 else ""}')
    return found


def _lock(path, command):
    handle = open(osp.join(path, LOCK), 'a')  # noqa: SIM115  (held open for the whole run)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SetupError(f'{path} is in use by another {command} (or its training process): wait for it to '
                         'finish or stop it') from None
    return handle


def _remove(path):
    if osp.islink(path) or not osp.isdir(path):
        os.remove(path)
    else:
        shutil.rmtree(path)


def check_replaceable(path, *, marker, command, force, error=SetupError):
    """Before a command writes the folder ``path`` anew: an existing one is replaced only with ``force`` and only when
    ``command`` wrote it (its ``marker`` file is in it); else ``error`` (one line naming the folder)."""
    if not osp.exists(path):
        return
    if not force:
        raise error(f'{path} already exists; pass --force to rebuild it')
    if not osp.isfile(osp.join(path, marker)):
        raise error(f'{path} was not written by {command} (no {marker} in it): refusing to replace it; choose '
                    'another output')


def remove_written(path, marker, command):
    """Delete the folder ``path`` that ``command`` wrote, proven by the file ``marker`` that only it writes there;
    anything else at ``path`` is refused with :class:`~amsnet_basicsr.errors.SetupError` and left as it is."""
    if not osp.isfile(osp.join(path, marker)):
        raise SetupError(f'{path} was not written by {command} (no {marker} in it): refusing to delete it; move it '
                         'away or choose another output')
    shutil.rmtree(path)


def _plain(name):
    """A recorded entry that is one plain name inside the folder (a tampered record can reach nothing else)."""
    return isinstance(name, str) and name not in ('', '.', '..') and '/' not in name and os.sep not in name


def take(path, *, command, names, settings, inputs, mode, force_flag='--force', resume_flag='--resume'):
    """Claim ``path`` for ``command`` (see the module docstring); ``mode`` is 'new', 'resume' or 'force'.

    ``names``: the top-level entries the command may write; ``settings``: a JSON-able dict compared on resume;
    ``inputs``: a JSON-able list of (name, fingerprint) pairs compared on resume; ``force_flag``/``resume_flag``: the
    command's spelling of the two modes (``resume_flag=None``: it has none). Returns an :class:`OwnedFolder`.
    """
    path = osp.abspath(path)
    flag = {'new': '', 'resume': f' {resume_flag}', 'force': f' {force_flag}'}[mode]
    if osp.exists(path) and not osp.isdir(path):
        raise SetupError(f'{path} exists and is not a folder')
    entries = set(os.listdir(path)) - {LOCK} if osp.isdir(path) else set()
    record = read_record(path) if entries else None
    if entries and (record is None or record.get('command') != command):
        raise SetupError(f'{path} is not empty and holds no {command} run (no {RECORD}): nothing was written '
                         'there; choose an empty or new folder')
    if record is None and mode == 'resume':
        raise SetupError(f'{resume_flag}: {path} holds no earlier {command} run to continue')
    if record is not None and mode == 'new':
        resume = f'{resume_flag} to continue it or ' if resume_flag else ''
        raise SetupError(f'{path} holds an earlier {command} run: pass {resume}{force_flag} to delete what it '
                         'wrote and start again')
    os.makedirs(path, exist_ok=True)
    lock = _lock(path, command)
    try:
        if record is not None:
            record = read_record(path)  # again, under the lock
            if mode == 'resume':
                found = differences(record, settings, inputs)
                if found:
                    raise SetupError(f'{resume_flag}: the run in {path} had other settings or inputs '
                                     f'({"; ".join(found)}): run again with its settings, or pass {force_flag} to '
                                     'start again')
                return OwnedFolder(path, record, lock)
            for name in record.get('owned', []):
                if _plain(name) and osp.lexists(osp.join(path, name)):
                    _remove(osp.join(path, name))
        foreign = sorted(name for name in names if osp.lexists(osp.join(path, name)))
        if foreign:
            raise SetupError(f'{path}: {", ".join(foreign)} exist and were not written by {command}{flag}; '
                             'move them away or choose another folder')
        record = dict(command=command, settings=settings, inputs=[list(item) for item in inputs], owned=list(names))
        atomic_write(osp.join(path, RECORD), lambda handle: handle.write(json.dumps(record, indent=1).encode()))
        return OwnedFolder(path, json.loads(json.dumps(record)), lock)
    except BaseException:
        lock.close()
        raise

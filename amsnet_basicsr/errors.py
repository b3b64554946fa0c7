"""The errors every command reports as one line naming the file or option key, and the exit codes of all commands.

Exit codes, the same for ``train.py``/``amsnet-train``, ``test.py``/``amsnet-test``, ``amsnet-denoise``,
``amsnet-demo`` and the scripts:

====  ==========================================================================================================
0     success
1     partial failure: some inputs could not be processed, the others were written (``amsnet-denoise``)
2     bad input: an option, an options file, an image, a dataset, a checkpoint, a flag or a folder that cannot
      work (a file system error included: unreadable, unwritable, full), a settings mismatch, or a training run
      stopped by a non-finite loss; one line ``<command>: error: <message>`` on stderr
130   interrupted (Ctrl-C): one line ``<command>: interrupted``; nothing half-written is left under a final name
====  ==========================================================================================================

Anything else (a traceback) is a bug: the error's cause is kept (``raise ... from error``), never hidden.
"""
import sys

EXIT_PARTIAL_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class AMSNetError(Exception):
    """Base class of the errors the commands report as one line (exit status :data:`EXIT_BAD_INPUT`)."""


class OptionError(AMSNetError, ValueError):
    """An option file value that cannot work; the message names the key and the allowed values."""


class SetupError(AMSNetError):
    """A command-line flag, options file or model that cannot be used: nothing can run."""


class ImageError(AMSNetError, ValueError):
    """An input image that cannot be used; the message names the file and the reason."""


class DataError(AMSNetError, ValueError):
    """A dataset file or folder that is missing or not in the expected format; the message names it."""


class NonFiniteLossError(AMSNetError, FloatingPointError):
    """The training loss (or the weights about to be saved) became NaN/Inf; the run stops, nothing poisoned is saved."""


class CheckpointError(AMSNetError, RuntimeError):
    """A checkpoint or training state that cannot be used for resuming; the message names the file."""


def one_line(error):
    """The message of an AMSNet error; for one re-raised from a DataLoader worker, its original message."""
    text = str(error)
    if 'Original Traceback' in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1].split(': ', 1)[-1] if lines else text
    return text


def describe_os_error(error):
    """One line for a file system error: the file it concerns and the system's reason."""
    names = ' -> '.join(str(name) for name in (error.filename, error.filename2) if name is not None)
    reason = error.strerror or str(error)
    return f'{names}: {reason}' if names else reason


def report(command, error):
    """Print ``<command>: error: <message>`` on stderr; return :data:`EXIT_BAD_INPUT`."""
    text = describe_os_error(error) if isinstance(error, OSError) else one_line(error)
    print(f'{command}: error: {text}', file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def report_interrupt(command):
    """Print ``<command>: interrupted`` on stderr; return :data:`EXIT_INTERRUPTED`."""
    print(f'{command}: interrupted', file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def run_command(command, function, *args):
    """``function(*args)`` as a command: exit status 0; :data:`EXIT_BAD_INPUT` with one line for an AMSNet error or a
    file system error (``OSError``: unwritable, missing, full); :data:`EXIT_INTERRUPTED` on Ctrl-C."""
    try:
        function(*args)
    except (AMSNetError, OSError) as error:
        return report(command, error)
    except KeyboardInterrupt:
        return report_interrupt(command)
    return 0

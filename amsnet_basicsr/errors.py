"""The errors every command reports as one line naming the file or option key, and the exit codes of all commands.

Exit codes, the same for ``train.py``/``amsnet-train``, ``test.py``/``amsnet-test``, ``amsnet-denoise``,
``amsnet-demo`` and the scripts:

====  ==========================================================================================================
0     success
1     partial failure: some inputs could not be processed, the others were written (``amsnet-denoise``)
2     bad input: an option, an options file, an image, a dataset, a checkpoint or a flag that cannot work, or a
      training run stopped by a non-finite loss; one line ``<command>: error: <message>`` on stderr
====  ==========================================================================================================

Anything else (a traceback) is a bug: the error's cause is kept (``raise ... from error``), never hidden.
"""
import sys

EXIT_PARTIAL_FAILURE = 1
EXIT_BAD_INPUT = 2


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


def report(command, error):
    """Print ``<command>: error: <message>`` on stderr; return :data:`EXIT_BAD_INPUT`."""
    print(f'{command}: error: {one_line(error)}', file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def run_command(command, function, *args):
    """``function(*args)`` as a command: exit status 0, or :data:`EXIT_BAD_INPUT` with one line for an AMSNet error."""
    try:
        function(*args)
    except AMSNetError as error:
        return report(command, error)
    return 0

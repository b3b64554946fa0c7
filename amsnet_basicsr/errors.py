"""Errors that the entry points report as one clear line (no traceback): they name the file or option key."""


class AMSNetError(Exception):
    """Base class of the errors ``amsnet_basicsr/train.py`` reports without a traceback."""


class OptionError(AMSNetError, ValueError):
    """An option file value that cannot work; the message names the key and the allowed values."""


class ImageError(AMSNetError, ValueError):
    """An input image that cannot be used; the message names the file and the reason."""


class NonFiniteLossError(AMSNetError, FloatingPointError):
    """The training loss (or the weights about to be saved) became NaN/Inf; the run stops, nothing poisoned is saved."""


class CheckpointError(AMSNetError, RuntimeError):
    """A checkpoint or training state that cannot be used for resuming; the message names the file."""

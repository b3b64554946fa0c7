"""Each architecture's own size multiple: the side every input must be a multiple of (``amsnet.size_multiple: auto``).

The facts live beside the classes: spandrel's declaration for the spandrel classes
(:func:`~amsnet_basicsr.archs.spandrel_arch.spandrel_size_multiple`), a ``size_multiple`` attribute on this
package's own (UNet 32, DeamNet 16, NAFNetBase 2 ** encoder levels, MaskAwareDnCNN 1; a class registered from
outside the package may declare one too), and :data:`OTHER_FACTS` for a class whose file declares none (LocalNAFNet).
"""
from typing import Callable, Dict

from torch import nn

from .local_nafnet_arch import LocalNAFNet
from .spandrel_arch import SPANDREL_ARCHITECTURES, spandrel_size_multiple

# LocalNAFNet: NAFNet's 2 ** encoder levels (its forward zero-pads to it, which would feed padding into the TLC windows)
OTHER_FACTS: Dict[type, Callable[[nn.Module], int]] = {LocalNAFNet: lambda net: net.padder_size}


def size_multiple(net: nn.Module) -> int:
    """The size multiple of the denoiser ``net`` (unwrapped from DataParallel/DDP); ``ValueError`` for a class
    whose requirement is not known here (BasicSR's own architectures: set ``amsnet.size_multiple`` explicitly)."""
    while isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    kind = type(net)
    if kind in OTHER_FACTS:
        value = OTHER_FACTS[kind](net)
    elif kind in SPANDREL_ARCHITECTURES:
        value = spandrel_size_multiple(net)
    elif isinstance(getattr(net, 'size_multiple', None), int) and not isinstance(net.size_multiple, bool):
        value = net.size_multiple
    else:
        raise ValueError(f'auto: the size multiple of {kind.__name__} is not known; set it to the multiple its '
                         'input sides need (1 if any size works)')
    return int(value)

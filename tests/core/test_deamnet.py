"""DeamNet: builds from option dicts at the paper's size (supplement Tab. 1) and maps images to images (the D-BSN
tests of this file moved to benchmarks/tests/test_dbsn.py with the AP-BSN comparison)."""
import pytest
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.archs.deamnet_arch import DeamNet

from basicsr.archs import build_network


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_paper_size_and_registration():
    """DeamNet (real, 64 ch) 2.228 M (supplement Tab. 1)."""
    deam = build_network({'type': 'DeamNet', 'channels': 64})
    assert abs(count(deam) / 1e6 - 2.228) < 0.001


@pytest.mark.parametrize('channels', [8, 16])
def test_deamnet_maps_images_to_images(channels):
    net = DeamNet(channels=channels)
    x = torch.rand(2, 3, 32, 48)
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.abs().mean().backward()
    assert all(p.grad is not None for name, p in net.named_parameters()
               if not name.startswith(('net2.conv_dila', 'net2.cat1')))

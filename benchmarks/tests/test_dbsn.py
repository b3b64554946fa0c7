"""D-BSN (D_A) is blind at every pixel; its unrestricted variant D_AS is not (AMSNet Tab. 3, supplement Sec. 1.8).

Also: importing benchmarks/apbsn.py registers ``DBSNl`` and ``APBSNModel`` into BasicSR (the objects of that module,
under names BasicSR's own do not use), D-BSN builds from option dicts at the paper's size, and declares its size
multiple (any input size).
"""
import pytest
import torch
from apbsn import APBSNModel, DBSNl  # registers DBSNl and APBSNModel into BasicSR

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import archs

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY


def self_gradients(net, size):
    """|d y[:, :, p] / d x[:, :, p]| summed over channel pairs, for every pixel p of a random (1, 3, *size) image."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, *size, dtype=torch.float64, requires_grad=True)
    y = net(x)
    height, width = size
    own = torch.zeros(size, dtype=torch.float64)
    others = torch.zeros(size, dtype=torch.float64)
    for row in range(height):
        for col in range(width):
            grad, = torch.autograd.grad(y[0, :, row, col].sum(), x, retain_graph=True)
            own[row, col] = grad[0, :, row, col].abs().sum()
            others[row, col] = grad.abs().sum() - own[row, col]
    return own, others


def tiny_dbsn(unrestricted, seed=0, init='pytorch'):
    torch.manual_seed(seed)
    return DBSNl(base_ch=8, num_module=2, unrestricted=unrestricted, init=init).double()


@pytest.mark.parametrize('init', ['pytorch', 'kaiming'])
def test_d_a_output_never_depends_on_its_own_input_pixel(init):
    """Autograd over every pixel of a 13x11 image (borders included): dy[p]/dx[p] = 0, dy[p]/dx[q] != 0."""
    own, others = self_gradients(tiny_dbsn(unrestricted=False, init=init), (13, 11))
    assert own.abs().max() == 0
    assert (others > 0).all(), 'D_A must still see its neighbours'


@pytest.mark.parametrize('init', ['pytorch', 'kaiming'])
def test_d_as_output_depends_on_its_own_input_pixel(init):
    """D_AS (plain 3x3 instead of dilated convs) leaks each pixel back into its own output: the identity is
    reachable."""
    own, _ = self_gradients(tiny_dbsn(unrestricted=True, init=init), (13, 11))
    assert (own > 0).all()


def test_blind_spot_survives_training_steps():
    """The masked centre weight stays inert after optimiser steps (the mask is applied in forward, not stored)."""
    net = tiny_dbsn(unrestricted=False)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-2)
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    for _ in range(3):
        optimiser.zero_grad()
        (net(x) - x).abs().mean().backward()
        assert net.branch1.body[0].weight.grad[..., 1, 1].abs().max() == 0
        optimiser.step()
    own, _ = self_gradients(net, (8, 8))
    assert own.abs().max() == 0


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_import_registers_the_comparison_into_basicsr():
    """``import apbsn`` registers this module's classes. BasicSR's registry refuses a name registered twice and
    ``import basicsr`` (through the plugin, before ``apbsn``) registers all of BasicSR's own, so a registration that
    succeeded under these names collides with none of them (the package's own names: tests/core/test_archs.py)."""
    assert ARCH_REGISTRY.get('DBSNl') is DBSNl
    assert MODEL_REGISTRY.get('APBSNModel') is APBSNModel


@pytest.mark.parametrize('unrestricted', [False, True])
def test_paper_sizes_and_registration(unrestricted):
    """D-BSN 3.66 M parameters, D_AS the same count (supplement Tab. 1)."""
    dbsn = build_network({'type': 'DBSNl', 'unrestricted': unrestricted})
    assert abs(count(dbsn) / 1e6 - 3.656) < 0.001


def test_dbsn_declares_its_size_multiple():
    """No downsampling: size multiple 1 (``amsnet.size_multiple: auto``), also through DataParallel; the global RNG
    is left as it was; any input size maps to itself (the row DBSNl had in tests/core/test_inference.py's
    test_each_architecture_declares_its_size_multiple)."""
    network = {'type': 'DBSNl', 'base_ch': 8, 'num_module': 1}
    net = build_network(dict(network))
    state = torch.get_rng_state()
    assert archs.size_multiple(net) == 1
    assert archs.size_multiple(torch.nn.DataParallel(net)) == 1
    assert torch.equal(torch.get_rng_state(), state)
    height = width = 48
    with torch.no_grad():
        assert net(torch.rand(1, 3, height, width)).shape[-2:] == (height, width)

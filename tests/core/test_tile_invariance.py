"""The student's output does not depend on the inference tile size (docs/tiling.md).

LocalNAFNet (amsnet_basicsr/archs/local_nafnet_arch.py) is NAFNet with TLC's local average pooling (Chu et al.,
ECCV 2022): on crops no larger than ``train_size`` it is NAFNet (training is unchanged), on larger images its
pooling is local, so tiled and whole-image inference agree to under half an 8-bit grey level.
"""
import pytest
import torch
import torch.nn.functional as F
from spandrel.architectures.NAFNet import NAFNet

import amsnet_basicsr.plugin  # noqa: F401  (registers LocalNAFNet into BasicSR)
from amsnet_basicsr import export, tiling
from amsnet_basicsr.archs.local_nafnet_arch import LocalNAFNet, local_mean

from basicsr.archs import build_network

STUDENT = dict(img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])
TRAIN_SIZE = 64
# the student's inference tiles: amsnet.tile.overlap and amsnet.size_multiple of its denoise.yml
OVERLAP, MULTIPLE = 128, 16


def random_nafnet(seed=0, scale=1.0):
    """The student NAFNet with PyTorch's initialisation and random block scales ``beta`` / ``gamma`` (zero at
    initialisation, which would make every block, and so the channel attention, an identity)."""
    torch.manual_seed(seed)
    net = NAFNet(**STUDENT).eval()
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                parameter.normal_(0, scale)
    return net


def local_copy(net):
    local = LocalNAFNet(**STUDENT, train_size=TRAIN_SIZE).eval()
    local.load_state_dict(net.state_dict(), strict=True)
    return local


def test_local_mean_is_a_clipped_box_filter():
    x = torch.randn(2, 3, 37, 50, dtype=torch.float64)
    for radius in (0, 1, 5, 20, 36, 49, 80):
        expected = F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)
        assert torch.allclose(local_mean(x, radius).expand_as(x), expected, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: local_mean(t, 2), torch.randn(1, 2, 7, 9, dtype=torch.float64,
                                                                             requires_grad=True))


@pytest.mark.parametrize('size', [(64, 64), (48, 64), (33, 17), (16, 1)])
def test_equals_nafnet_on_training_crops(size):
    """(2 * n - 1)-pixel windows cover every crop of at most n pixels: same outputs and gradients as NAFNet."""
    nafnet = random_nafnet().double()
    local = local_copy(nafnet).double()
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    outputs = []
    for net in (nafnet, local):
        net.zero_grad()
        out = net(x)
        (out - x.flip(-1)).abs().mean().backward()
        outputs.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = outputs
    assert torch.allclose(out_a, out_b, rtol=0, atol=1e-10)
    assert all(torch.allclose(a, b, rtol=1e-8, atol=1e-12) for a, b in zip(grads_a, grads_b))


def test_builds_from_options_and_loads_nafnet_weights_strictly():
    net = build_network({'type': 'LocalNAFNet', **STUDENT, 'train_size': TRAIN_SIZE})
    net.load_state_dict(random_nafnet().state_dict(), strict=True)
    radii = [blocks[0].sca[0].radius for blocks in (*net.encoders, net.middle_blks, *net.decoders)]
    assert radii == [63, 31, 15, 7, 3, 7, 15, 31, 63]  # (2 * 64 / 2 ** level - 1)-pixel windows


def test_tiled_equals_whole_image():
    """3 x 3 tiles of 256 px overlapping by the student's 128 px against one pass over the whole image: LocalNAFNet
    agrees to half a grey level; NAFNet with the same weights does not (its attention pools over each tile)."""
    torch.manual_seed(1)
    rows, cols = torch.meshgrid(torch.linspace(0, 1, 512), torch.linspace(0, 1, 512), indexing='ij')
    scene = torch.stack([rows, cols, 0.5 + 0.4 * torch.sin(12 * rows * cols)])[None]
    noisy = (scene + 0.08 * torch.randn_like(scene)).clamp(0, 1)
    settings = dict(single_pass=True, stride=1, multiple=MULTIPLE, overlap=OVERLAP)
    plan = tiling.plan_tiles(512, 512, 288, OVERLAP, 1, MULTIPLE)
    assert (plan.tile_height, plan.row_origins, plan.col_origins) == (256, [0, 128, 256], [0, 128, 256])
    nafnet = random_nafnet()
    errors = {}
    for name, net in (('NAFNet', nafnet), ('LocalNAFNet', local_copy(nafnet))):
        whole = tiling.denoise_image(net, noisy, tile_size=None, **settings)
        tiled = tiling.denoise_image(net, noisy, tile_size=288, **settings)
        errors[name] = (tiled - whole).abs().max().item() * 255
    assert errors['LocalNAFNet'] < 0.5, errors  # measured: 0.40 grey levels
    assert errors['NAFNet'] > 2, errors  # measured: 5.05 grey levels


@pytest.mark.slow
def test_exports_to_onnx_with_dynamic_shapes():
    """No branch on the input size: one ONNX graph serves every size, training crops and larger maps alike."""
    onnxruntime = pytest.importorskip('onnxruntime')
    net = local_copy(random_nafnet())
    session = onnxruntime.InferenceSession(export.export_onnx(net, channels=3, size_multiple=MULTIPLE))
    worst = export.max_difference(net, session, channels=3, size_multiple=MULTIPLE)
    assert worst < 1e-3, worst

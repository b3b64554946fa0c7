"""The one inference object (amsnet_basicsr/inference.py): AMSNetDenoiser on arrays and tensors, its strength, its
channel handling, and ``amsnet.size_multiple: auto`` (each architecture's own size multiple, amsnet_basicsr/archs)."""

import platform
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import archs, denoise, distill, inference, tiling
from amsnet_basicsr.config import SchemeConfig
from amsnet_basicsr.errors import ImageError, OptionError
from amsnet_basicsr.image_io import join_image, read_image, split_image
from amsnet_basicsr.inference import AMSNetDenoiser, channels_last, overlay
from amsnet_basicsr.masks import PositionalMasks
from amsnet_basicsr.networks import build_denoiser

from helpers import GOLDEN, REPO
from helpers import GOLDEN_NETWORKS as NETWORKS
from helpers import GOLDEN_SCHEMES as SCHEMES

from basicsr.archs import build_network


def golden_options(kind):
    return {'network_g': dict(NETWORKS[kind]), 'amsnet': SCHEMES[kind],
            'path': {'pretrain_network_g': str(GOLDEN / f'{kind}.pth'), 'param_key_g': 'params'}}


def noisy_photo():
    """The golden noisy photo as float RGB (H, W, 3) in [0, 1]."""
    return split_image(read_image(GOLDEN / 'noisy.png'))[0]


def reference(kind, colour):
    """What amsnet-denoise computed before the object existed (its ``denoise_array``, same channels)."""
    options = golden_options(kind)
    net = build_denoiser(options, options['path']['pretrain_network_g'])
    config = SchemeConfig.from_options(options).resolved(net)
    tensor = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[None]
    output = tiling.denoise_image(channels_last(net), tensor.contiguous(), masks=PositionalMasks(config.seed),
                                  **config.inference_kwargs('cpu'), device=torch.device('cpu'))
    return output[0].permute(1, 2, 0).float().numpy()


# ------------------------------------------------------------------------------------------------ memory format
@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_the_cpu_runs_the_network_on_channels_last_without_touching_it(kind):
    """On the CPU every tile batch reaches a channels-last copy of the network as an NHWC tensor (oneDNN's fast
    layout); the network itself keeps its weights' layout and values (a network still training is not changed), the
    output is NCHW-contiguous and equals the NCHW computation to float rounding."""
    options = golden_options(kind)
    denoiser = AMSNetDenoiser.from_options(options)
    before = {name: (value.clone(), value.stride()) for name, value in denoiser.net.state_dict().items()}
    layouts = []
    hook = denoiser.net.register_forward_pre_hook(  # deep-copied with the network: it reports the copy's calls
        lambda module, inputs: layouts.append((inputs[0].is_contiguous(memory_format=torch.channels_last),
                                               all(p.is_contiguous(memory_format=torch.channels_last)
                                                   for p in module.parameters() if p.dim() == 4))))
    colour = noisy_photo()
    output = denoiser(torch.from_numpy(colour).permute(2, 0, 1)[None])
    hook.remove()
    assert layouts and all(tiles and weights for tiles, weights in layouts) and output.is_contiguous()
    for name, value in denoiser.net.state_dict().items():
        assert torch.equal(value, before[name][0]) and value.stride() == before[name][1]
    config = denoiser.scheme
    nchw = tiling.denoise_image(denoiser.net, torch.from_numpy(colour).permute(2, 0, 1)[None].contiguous(),
                                masks=PositionalMasks(config.seed), **config.inference_kwargs('cpu'),
                                device=torch.device('cpu'))
    np.testing.assert_allclose(output.numpy(), nchw.numpy(), rtol=0, atol=1e-5)


HEAP_PROBE = """
import ctypes, sys
import torch
from amsnet_basicsr.inference import keep_freed_memory


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
                                                     'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
took = keep_freed_memory() if sys.argv[1] == 'kept' else None
before = mallinfo2()
maps = torch.ones(64, 1024, 1024)  # a 256 MiB feature map
during = mallinfo2()
del maps
after = mallinfo2()
print(took, during.hblkhd - before.hblkhd, during.arena - before.arena, after.arena - before.arena)
"""


@pytest.mark.slow
def test_keep_freed_memory_serves_large_feature_maps_from_the_heap_and_keeps_them():
    """amsnet-denoise's malloc settings (:func:`inference.keep_freed_memory`), in a fresh process. With glibc: by
    default a 256 MiB tensor is a separate mmap (``hblkhd``), released when freed; with them it comes from the heap
    (``arena``; grown by about its size: part may be free heap already there) and the heap keeps it all for the next
    layer after it is freed. With another C library (no ``mallinfo2`` to read) the function says it changed nothing."""
    if platform.libc_ver()[0] != 'glibc':
        took = subprocess.run([sys.executable, '-c', 'from amsnet_basicsr.inference import keep_freed_memory; '
                               'print(keep_freed_memory())'], capture_output=True, text=True, check=True).stdout
        assert took.split() == ['False']
        return
    size = 256 << 20
    runs = {mode: subprocess.run([sys.executable, '-c', HEAP_PROBE, mode], capture_output=True, text=True,
                                 check=True).stdout.split() for mode in ('default', 'kept')}
    took, mapped, heap, kept = runs['default']
    assert took == 'None' and int(mapped) >= size and int(heap) < size and int(kept) < size
    took, mapped, heap, kept = runs['kept']
    assert took == 'True' and int(mapped) == 0 and int(heap) > 0.9 * size and int(kept) == int(heap)


# ------------------------------------------------------------------------------------------------ strength
@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_strength_one_is_the_denoiser_output_bit_for_bit(kind):
    colour = noisy_photo()
    denoiser = AMSNetDenoiser.from_options(golden_options(kind))
    assert denoiser.strength == 1.0
    output = denoiser(colour)
    assert output.dtype == np.float32 and output.shape == colour.shape
    np.testing.assert_array_equal(output, reference(kind, colour))
    golden = cv2.imread(str(GOLDEN / f'denoise_{kind}.png'), cv2.IMREAD_UNCHANGED)
    difference = np.abs(join_image(output, None, np.uint8).astype(int) - golden.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.005  # test_golden.py's tolerance across builds


@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_strength_zero_is_the_input_and_between_is_the_blend(kind):
    colour = noisy_photo()
    np.testing.assert_array_equal(AMSNetDenoiser.from_options(golden_options(kind), strength=0)(colour), colour)
    denoised = reference(kind, colour)
    blended = AMSNetDenoiser.from_options(golden_options(kind), strength=0.25)(colour)
    np.testing.assert_allclose(blended, 0.25 * denoised + 0.75 * colour, rtol=0, atol=1e-6)
    for bad in (-0.1, 1.5, float('nan'), True, '1'):
        with pytest.raises(ValueError, match=r'strength must be a number in \[0, 1\]'):
            AMSNetDenoiser.from_options(golden_options(kind), strength=bad)


def test_strength_flag_of_amsnet_denoise(tmp_path, capsys, write_options):
    option_file = write_options(tmp_path / 'mask.yml', golden_options('mask'))
    photo = GOLDEN / 'noisy.png'
    assert denoise.main([str(photo), str(tmp_path / 'zero'), '-opt', str(option_file), '--quiet',
                         '--strength', '0']) == 0
    assert np.array_equal(cv2.imread(str(tmp_path / 'zero' / 'noisy.png'), cv2.IMREAD_UNCHANGED),
                          cv2.imread(str(photo), cv2.IMREAD_UNCHANGED))
    capsys.readouterr()
    for bad in ('1.5', '-1', 'nan', 'strong'):
        assert denoise.main([str(photo), str(tmp_path / 'bad'), '-opt', str(option_file), '--strength', bad]) == 2
        assert capsys.readouterr().err == f'amsnet-denoise: error: --strength must be a number in [0, 1], got {bad}\n'
    assert not (tmp_path / 'bad').exists()


# ---------------------------------------------------------------------------------------- the command's array
def test_from_options_gives_the_array_amsnet_denoise_writes(tmp_path, write_options):
    """A float32 TIFF stores the array as computed (clipped to [0, 1]): the command and the object agree exactly,
    flags included (they are the object's ``overrides``)."""
    colour = noisy_photo()[:40, :56]
    photo = tmp_path / 'photo.tif'
    assert cv2.imwrite(str(photo), np.ascontiguousarray(colour[..., ::-1]))
    option_file = write_options(tmp_path / 'mask.yml', golden_options('mask'))
    assert denoise.main([str(photo), str(tmp_path / 'out'), '-opt', str(option_file), '--quiet', '--seed', '5',
                         '--tile', '24', '--strength', '0.5']) == 0
    written = cv2.imread(str(tmp_path / 'out' / 'photo.tif'), cv2.IMREAD_UNCHANGED)[..., ::-1]
    denoiser = AMSNetDenoiser.from_options(option_file, overrides={'seed': 5, 'tile': {'size': 24}}, strength=0.5)
    assert denoiser.scheme.seed == 5 and denoiser.scheme.tile == SchemeConfig.from_section(
        {'tile': {'size': 24, 'overlap': 8}}).tile
    np.testing.assert_array_equal(written, np.clip(denoiser(colour), 0, 1))


def test_overrides_merge_one_level_deep():
    section = {'seed': 1, 'tile': {'size': 32, 'overlap': 8}, 'r3': {'enabled': True}}
    assert overlay(section, {'seed': 2, 'tile': {'size': None}, 'chunk_size': None}) == {
        'seed': 2, 'tile': {'size': None, 'overlap': 8}, 'r3': {'enabled': True}, 'chunk_size': None}
    assert section['tile'] == {'size': 32, 'overlap': 8}  # not modified
    assert overlay(None, None) == {}


# ------------------------------------------------------------------------------------------------ channels
@pytest.mark.parametrize('kind', sorted(NETWORKS))
def test_a_gray_photo_goes_through_a_three_channel_model(kind):
    """Replicated to 3 channels, the output is their mean: on tensors, exactly the 3-channel call's mean."""
    denoiser = AMSNetDenoiser.from_options(golden_options(kind))
    assert denoiser.channels == 3
    gray = noisy_photo()[..., 1:2]
    output = denoiser(gray)
    assert output.shape == gray.shape and output.dtype == np.float32
    tensor = torch.from_numpy(np.ascontiguousarray(gray)).permute(2, 0, 1)[None]
    expected = denoiser(tensor.expand(1, 3, -1, -1).contiguous()).mean(1, keepdim=True)
    np.testing.assert_array_equal(output, expected[0].permute(1, 2, 0).numpy())
    assert not np.array_equal(output, gray)


def test_a_colour_photo_goes_through_a_one_channel_model_channel_by_channel(tmp_path):
    network = {'type': 'DnCNN', 'in_nc': 1, 'out_nc': 1, 'nc': 8, 'nb': 3}
    torch.manual_seed(1)
    torch.save({'params': build_network(dict(network)).state_dict()}, tmp_path / 'gray.pth')
    options = {'network_g': network, 'amsnet': {'seed': 2, 'tile': {'size': 32, 'overlap': 8}}}
    denoiser = AMSNetDenoiser.from_options(options, tmp_path / 'gray.pth')
    assert denoiser.channels == 1 and denoiser.scheme.size_multiple == 1
    colour = noisy_photo()[:37, :45]
    output = denoiser(colour)
    assert output.shape == colour.shape
    # the channels are a batch of three gray images (masks are seeded by position and image index: the first
    # channel is the gray photo's computation)
    np.testing.assert_array_equal(output[..., :1], denoiser(colour[..., :1]))
    channels = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[:, None]
    expected = tiling.denoise_image(channels_last(denoiser.net), channels, masks=PositionalMasks(2),
                                    **denoiser.scheme.inference_kwargs('cpu'))
    np.testing.assert_array_equal(output, expected[:, 0].permute(1, 2, 0).numpy())
    with pytest.raises(ImageError, match='a 2-channel image cannot go through a 1-channel model'):
        denoiser(colour[..., :2])


# ------------------------------------------------------------------------------------------------ tensors
def test_the_teacher_is_the_object_on_tensors():
    options = golden_options('mask')
    net = build_denoiser(options, options['path']['pretrain_network_g'])
    config = SchemeConfig.from_options(options)
    batch = torch.from_numpy(np.ascontiguousarray(noisy_photo()[:32, :40])).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    expected = tiling.denoise_image(net, batch, masks=PositionalMasks(config.seed),
                                    **config.with_size_multiple(1).inference_kwargs('cpu')).clamp_(0, 1)
    assert torch.equal(distill.teacher_output(net, config, batch), expected)
    assert torch.equal(AMSNetDenoiser(net, config)(batch).clamp(0, 1), expected)
    with pytest.raises(TypeError, match='expected a numpy array'):
        AMSNetDenoiser(net, config)([[0.5]])


def test_tiny_photos_and_tile_counts():
    denoiser = AMSNetDenoiser.from_options(golden_options('mask'))
    with pytest.raises(ImageError, match=r'a 3x3 photo is too small for the mask scheme at PD stride 2'):
        denoiser(np.full((3, 3, 3), 0.5, np.float32))
    assert denoiser.tile_count(32, 32) == 1 and denoiser.tile_count(100, 60) > 1
    student = AMSNetDenoiser.from_options(golden_options('student'))
    assert student(np.full((1, 1, 3), 0.5, np.float32)).shape == (1, 1, 3)


# ------------------------------------------------------------------------------------- size_multiple: auto
def shipped_options():
    return sorted((REPO / 'options').glob('*.yml'))


def test_size_multiple_auto_equals_the_hand_kept_values_of_the_shipped_options():
    """Every explicit ``size_multiple`` of options/*.yml (``amsnet`` for network_g, ``amsnet_teacher`` for
    network_teacher) is what ``auto`` resolves for that network; where a file has none, ``auto`` gives the old
    default 1. Networks are built once per configuration (random weights: the facts do not read them)."""
    built, checked = {}, []
    for path in shipped_options():
        options = yaml.safe_load(path.read_text())
        for section, network in (('amsnet', 'network_g'), ('amsnet_teacher', 'network_teacher')):
            if not isinstance(options.get(network), dict):
                continue
            key = yaml.safe_dump(options[network], sort_keys=True)
            if key not in built:
                built[key] = build_network(dict(options[network]))
            expected = (options.get(section) or {}).get('size_multiple', 1)
            resolved = SchemeConfig().resolved(built[key], key=section).size_multiple
            assert resolved == archs.size_multiple(built[key]) == expected, (path.name, section)
            checked.append((path.name, options[network]['type'], expected))
    assert len(checked) >= len(shipped_options())
    assert {(kind, multiple) for _, kind, multiple in checked} >= {('Restormer', 8), ('NAFNetBase', 16),
                                                                   ('UNet', 32), ('DnCNN', 1), ('NAFNet', 1)}


@pytest.mark.parametrize('network,multiple', [
    ({'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 3, 'act_mode': 'BR'}, 1),
    ({'type': 'DRUNet', 'in_nc': 3, 'out_nc': 3, 'nc': [4, 8, 16, 32], 'nb': 2}, 8),
    ({'type': 'SCUNet', 'in_nc': 3, 'config': [1, 1, 1, 1, 1, 1, 1], 'dim': 64}, 1),
    ({'type': 'NAFNet', 'img_channel': 3, 'width': 4, 'enc_blk_nums': [1, 1, 1], 'dec_blk_nums': [1, 1, 1]}, 1),
    ({'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1, 'heads': [1, 1, 2, 2],
      'LayerNorm_type': 'BiasFree'}, 8),
    ({'type': 'UNet', 'n_feature': 8}, 32),
    ({'type': 'NAFNetBase', 'width': 8, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1]}, 4),
    ({'type': 'LocalNAFNet', 'width': 4, 'enc_blk_nums': [1, 1, 1, 1], 'dec_blk_nums': [1, 1, 1, 1],
      'train_size': 32}, 16),
    ({'type': 'DeamNet', 'channels': 8}, 16),
    ({'type': 'MaskAwareDnCNN', 'nc': 8, 'nb': 2}, 1),
])
def test_each_architecture_declares_its_size_multiple(network, multiple):
    """Spandrel's declaration for its classes (NAFNet and SCUNet pad internally), the downsamplings of ours; the
    global RNG is left as it was (spandrel builds a network of its own to read the declaration)."""
    net = build_network(dict(network))
    state = torch.get_rng_state()
    assert archs.size_multiple(net) == multiple
    assert archs.size_multiple(torch.nn.DataParallel(net)) == multiple
    assert torch.equal(torch.get_rng_state(), state)
    height = width = max(3 * multiple, 48)  # SCUNet's minimum side is 40 (spandrel)
    with torch.no_grad():
        assert net(torch.rand(1, network.get('in_nc', 3), height, width)).shape[-2:] == (height, width)


def test_auto_needs_a_known_architecture_and_an_explicit_integer_always_wins():
    unknown = torch.nn.Conv2d(3, 3, 3, padding=1)
    with pytest.raises(OptionError, match=r'^amsnet_teacher\.size_multiple: auto: the size multiple of Conv2d is not '
                                          r'known; set it'):
        SchemeConfig().resolved(unknown, key='amsnet_teacher')
    assert SchemeConfig.from_section({'size_multiple': 2}).resolved(unknown).size_multiple == 2
    odd = build_network({'type': 'DRUNet', 'in_nc': 3, 'out_nc': 3, 'nc': [4, 8, 16, 32], 'nb': 1})
    with pytest.raises(OptionError, match=r'^amsnet\.size_multiple: auto: spandrel cannot read the size requirement '
                                          r'of this DRUNet .*; set it'):
        SchemeConfig().resolved(odd)
    with pytest.raises(OptionError, match=r'amsnet\.size_multiple must be auto or an integer >= 1'):
        SchemeConfig.from_section({'size_multiple': 'any'})
    unet = build_network({'type': 'UNet', 'n_feature': 8})  # a tile that fits 2 x 1 but not stride x 32 pixels
    with pytest.raises(OptionError, match=r'^amsnet\.tile: tile size 48 is smaller than stride x size multiple = 64 '):
        SchemeConfig.from_section({'tile': {'size': 48, 'overlap': 8}}).resolved(unet)
    scheme = SchemeConfig.from_section({'tile': {'size': 128, 'overlap': 8}})
    assert AMSNetDenoiser(unet, scheme).scheme.size_multiple == 32 and scheme.size_multiple == 'auto'


# ----------------------------------------------------------------------------------------------- low-frequency anchor
class CastingStudent(torch.nn.Module):
    """A 'denoiser' that returns the clean scene plus a colour cast: what a model used on photos unlike its
    training photos does to the block means."""

    def __init__(self, clean, cast):
        super().__init__()
        self.clean, self.cast = clean, torch.tensor(cast).view(1, 3, 1, 1)

    def forward(self, tensor):
        return self.clean + self.cast


def test_the_low_frequency_anchor_removes_a_cast_and_keeps_only_the_noise_block_means():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 96, 80, generator=generator)
    noise = torch.randn(1, 3, 96, 80, generator=generator) * 0.05
    noisy = clean + noise
    config = SchemeConfig.from_section({'single_pass': True, 'tile': {'size': None}, 'size_multiple': 1,
                                        'low_frequency_anchor': 16})
    anchored = AMSNetDenoiser(CastingStudent(clean, [0.08, -0.04, 0.02]), config)(noisy)
    without_cast = AMSNetDenoiser(CastingStudent(clean, [0.0, 0.0, 0.0]), config)(noisy)
    torch.testing.assert_close(anchored, without_cast, atol=1e-6, rtol=0)  # a constant cast is removed exactly
    error = anchored - clean
    assert error.mean((0, 2, 3)).abs().max() < 0.002  # the channel means are the scene's (the noise averages out)
    # what remains is the noise averaged over 16 x 16 blocks: about 1/16 of its standard deviation, not the noise
    assert error.std() < noise.std() / 8
    unanchored = AMSNetDenoiser(CastingStudent(clean, [0.08, -0.04, 0.02]),
                                SchemeConfig.from_section({'single_pass': True, 'tile': {'size': None},
                                                           'size_multiple': 1}))(noisy)
    assert (unanchored - clean).mean((0, 2, 3)).abs().max() > 0.07


def test_the_anchor_bias_removes_the_noise_s_own_mean_at_each_level():
    """sRGB noise whose mean depends on the level (per channel: -0.02 / -0.01 / -0.03 at 0.2, -0.005 / -0.002 /
    -0.004 at 0.8): anchored to the noisy means alone, an exact student inherits that mean; with ``anchor_bias`` (rows
    level, R, G, B; linear between the levels, flat beyond) it is removed, on colour and, through the channels' mean,
    on gray images; one row is a constant."""
    generator = torch.Generator().manual_seed(1)
    clean = torch.full((1, 3, 64, 96), 0.2)
    clean[..., 48:] = 0.8  # two flat halves, the second at the upper level
    rows = [[0.2, -0.02, -0.01, -0.03], [0.8, -0.005, -0.002, -0.004]]
    noise_mean = torch.where(clean < 0.5, torch.tensor(rows[0][1:]).view(1, 3, 1, 1),
                             torch.tensor(rows[1][1:]).view(1, 3, 1, 1))
    noisy = clean + noise_mean + 0.01 * torch.randn(clean.shape, generator=generator)
    section = {'single_pass': True, 'tile': {'size': None}, 'size_multiple': 1, 'low_frequency_anchor': 16}
    inner = np.s_[..., 4:-4, list(range(4, 40)) + list(range(56, 92))]  # away from the edge between the halves
    plain = AMSNetDenoiser(CastingStudent(clean, [0, 0, 0]), SchemeConfig.from_section(section))(noisy)
    torch.testing.assert_close((plain - clean)[inner].mean((0, 2, 3)), noise_mean.mean((0, 2, 3)), atol=2e-3, rtol=0)
    corrected = AMSNetDenoiser(CastingStudent(clean, [0, 0, 0]),
                               SchemeConfig.from_section({**section, 'anchor_bias': rows}))(noisy)
    assert (corrected - clean)[inner].abs().mean() < 0.002 < (plain - clean)[inner].abs().mean() / 4
    middle = torch.full((1, 3, 8, 8), 0.5)  # halfway between the levels: halfway between the biases
    halfway = inference.anchor_low_frequencies(middle, middle, block=8, bias=rows)
    torch.testing.assert_close(halfway - middle, torch.tensor([0.0125, 0.006, 0.017]).view(1, 3, 1, 1).expand_as(
        middle), atol=1e-6, rtol=0)  # the means raised by what the noise lowered them
    gray = inference.anchor_low_frequencies(middle[:, :1], middle[:, :1], block=8, bias=rows)
    torch.testing.assert_close(gray - 0.5, torch.full_like(gray, 0.0355 / 3), atol=1e-6, rtol=0)
    beyond = inference.anchor_low_frequencies(middle + 0.45, middle + 0.45, block=8, bias=rows)  # 0.95 > 0.8
    torch.testing.assert_close(beyond - middle - 0.45, torch.tensor(rows[1][1:]).neg().view(1, 3, 1, 1).expand_as(
        middle), atol=1e-6, rtol=0)
    constant = inference.anchor_low_frequencies(middle, middle, block=8, bias=rows[:1])
    torch.testing.assert_close(constant - middle, torch.tensor(rows[0][1:]).neg().view(1, 3, 1, 1).expand_as(
        middle), atol=1e-6, rtol=0)
    with pytest.raises(ImageError, match='anchor_bias has 3 channels, the image 2'):
        inference.anchor_low_frequencies(middle[:, :2], middle[:, :2], block=8, bias=rows)


@pytest.mark.parametrize('value,message', [
    ([[0.5, 0.1, 0.1, 0.2]], None), ([[0.5, 0.1, 0.1]], 'got'), ([], 'got'), ([[0.5]], 'got'), ('big', 'got'),
    ([[0.2, 0, 0, 0], [0.2, 0, 0, 0]], 'got levels'), ([[0.5, 0, 0, 0], [1.5, 0, 0, 0]], 'got levels'),
    ([[0.5, 0, 0, 0], [0.6, 0, 0]], 'got'), ([[0.5, 0, True, 0]], 'got')])
def test_the_anchor_bias_option_is_validated(value, message):
    section = {'low_frequency_anchor': 32, 'anchor_bias': value}
    if message is None:
        assert SchemeConfig.from_section(section).anchor_bias == ((0.5, 0.1, 0.1, 0.2),)
        return
    with pytest.raises(OptionError, match=f'amsnet.anchor_bias must be a list .*{message}'):
        SchemeConfig.from_section(section)


def test_the_anchor_bias_needs_the_anchor():
    with pytest.raises(OptionError, match='amsnet.anchor_bias needs amsnet.low_frequency_anchor'):
        SchemeConfig.from_section({'anchor_bias': [[0.5, 0, 0, 0]]})


@pytest.mark.parametrize('value', [1, 0, -4, 2.5, 'big', True])
def test_the_low_frequency_anchor_option_is_validated(value):
    with pytest.raises(OptionError, match='amsnet.low_frequency_anchor must be an integer >= 2'):
        SchemeConfig.from_section({'low_frequency_anchor': value})

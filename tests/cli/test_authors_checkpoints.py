"""The authors' released AMSNet checkpoints (NAFNetBase, Restormer, UNet) convert and load strictly, and the shipped
option files use the authors' settings (docs/authors_checkpoints.md).

Each fake checkpoint is laid out like the authors' PyTorch Lightning files: ``{'state_dict': {'net.dn.branches.0.<key>':
tensor}}``, with key names and shapes written out here from the authors' module definitions (``codes/arches/
NAFNetBase.py``, ``Restormer.py``, ``Unet.py``) and the settings of their ``configs/*.yaml``, not taken from our
networks, so a renamed or reshaped parameter fails the strict load.
"""
import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.convert import ConversionError, convert

from helpers import REPO

AUTHORS_SETTINGS = {  # net_param of the authors' configs/nafnet.yaml, restormer.yaml, unet.yaml
    'NAFNet': {'type': 'NAFNetBase', 'img_channel': 3, 'width': 32, 'enc_blk_nums': [2, 2, 4, 8],
               'middle_blk_num': 12, 'dec_blk_nums': [2, 2, 2, 2], 'dw_expand': 1, 'ffn_expand': 2},
    'Restormer': {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 48, 'num_blocks': [4, 6, 6, 8],
                  'num_refinement_blocks': 4, 'heads': [1, 2, 4, 8], 'ffn_expansion_factor': 2.66, 'bias': False,
                  'LayerNorm_type': 'BiasFree', 'dual_pixel_task': False},
    'UNet': {'type': 'UNet', 'in_nc': 3, 'out_nc': 3, 'n_feature': 128},  # blindspot and zero_last False: fixed here
}
SMALL = {  # the same networks shrunk so that the tests run in well under a second
    'NAFNet': {'width': 4, 'enc_blk_nums': [1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [2, 1]},
    'Restormer': {'dim': 8, 'num_blocks': [1, 1, 2, 1], 'num_refinement_blocks': 1, 'heads': [1, 1, 2, 2]},
    'UNet': {'n_feature': 8},
}


def nafnet_base_layout(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, dw_expand, ffn_expand, **_):
    """Key -> shape of the authors' NAFNetBase (BaselineBlock: norm1/2, conv1-5, se.1/se.3, beta, gamma)."""
    def block(prefix, c):
        d = c * dw_expand
        return {f'{prefix}.norm1.weight': (c,), f'{prefix}.norm1.bias': (c,),
                f'{prefix}.conv1.weight': (d, c, 1, 1), f'{prefix}.conv1.bias': (d,),
                f'{prefix}.conv2.weight': (d, 1, 3, 3), f'{prefix}.conv2.bias': (d,),
                f'{prefix}.se.1.weight': (d // 2, d, 1, 1), f'{prefix}.se.1.bias': (d // 2,),
                f'{prefix}.se.3.weight': (d, d // 2, 1, 1), f'{prefix}.se.3.bias': (d,),
                f'{prefix}.conv3.weight': (c, d, 1, 1), f'{prefix}.conv3.bias': (c,),
                f'{prefix}.norm2.weight': (c,), f'{prefix}.norm2.bias': (c,),
                f'{prefix}.conv4.weight': (ffn_expand * c, c, 1, 1), f'{prefix}.conv4.bias': (ffn_expand * c,),
                f'{prefix}.conv5.weight': (c, ffn_expand * c, 1, 1), f'{prefix}.conv5.bias': (c,),
                f'{prefix}.beta': (1, c, 1, 1), f'{prefix}.gamma': (1, c, 1, 1)}

    layout = {'intro.weight': (width, img_channel, 3, 3), 'intro.bias': (width,),
              'ending.weight': (img_channel, width, 3, 3), 'ending.bias': (img_channel,)}
    c = width
    for level, count in enumerate(enc_blk_nums):
        for index in range(count):
            layout.update(block(f'encoders.{level}.{index}', c))
        layout.update({f'downs.{level}.weight': (2 * c, c, 2, 2), f'downs.{level}.bias': (2 * c,)})
        c *= 2
    for index in range(middle_blk_num):
        layout.update(block(f'middle_blks.{index}', c))
    for level, count in enumerate(dec_blk_nums):
        layout[f'ups.{level}.0.weight'] = (2 * c, c, 1, 1)
        c //= 2
        for index in range(count):
            layout.update(block(f'decoders.{level}.{index}', c))
    return layout


def restormer_layout(inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor,
                     **_):
    """Key -> shape of Restormer without biases, BiasFree LayerNorm (norm*.body.weight only), no dual-pixel conv."""
    def blocks(prefix, c, num_heads, count):
        hidden = int(c * ffn_expansion_factor)
        layout = {}
        for index in range(count):
            p = f'{prefix}.{index}'
            layout.update({f'{p}.norm1.body.weight': (c,), f'{p}.attn.temperature': (num_heads, 1, 1),
                           f'{p}.attn.qkv.weight': (3 * c, c, 1, 1), f'{p}.attn.qkv_dwconv.weight': (3 * c, 1, 3, 3),
                           f'{p}.attn.project_out.weight': (c, c, 1, 1), f'{p}.norm2.body.weight': (c,),
                           f'{p}.ffn.project_in.weight': (2 * hidden, c, 1, 1),
                           f'{p}.ffn.dwconv.weight': (2 * hidden, 1, 3, 3),
                           f'{p}.ffn.project_out.weight': (c, hidden, 1, 1)})
        return layout

    d = dim
    return {'patch_embed.proj.weight': (d, inp_channels, 3, 3),
            **blocks('encoder_level1', d, heads[0], num_blocks[0]), 'down1_2.body.0.weight': (d // 2, d, 3, 3),
            **blocks('encoder_level2', 2 * d, heads[1], num_blocks[1]), 'down2_3.body.0.weight': (d, 2 * d, 3, 3),
            **blocks('encoder_level3', 4 * d, heads[2], num_blocks[2]), 'down3_4.body.0.weight': (2 * d, 4 * d, 3, 3),
            **blocks('latent', 8 * d, heads[3], num_blocks[3]), 'up4_3.body.0.weight': (16 * d, 8 * d, 3, 3),
            'reduce_chan_level3.weight': (4 * d, 8 * d, 1, 1),
            **blocks('decoder_level3', 4 * d, heads[2], num_blocks[2]),
            'up3_2.body.0.weight': (8 * d, 4 * d, 3, 3), 'reduce_chan_level2.weight': (2 * d, 4 * d, 1, 1),
            **blocks('decoder_level2', 2 * d, heads[1], num_blocks[1]), 'up2_1.body.0.weight': (4 * d, 2 * d, 3, 3),
            **blocks('decoder_level1', 2 * d, heads[0], num_blocks[0]),
            **blocks('refinement', 2 * d, heads[0], num_refinement_blocks),
            'output.weight': (out_channels, 2 * d, 3, 3)}


def unet_layout(in_nc, out_nc, n_feature, **_):
    """Key -> shape of the authors' non-blind-spot UNet (pools have no parameters, ConvTranspose2d is
    (in, out, 2, 2))."""
    f = n_feature
    convs = {'enc_conv0': (f, in_nc, 3, 3), **{f'enc_conv{i}': (f, f, 3, 3) for i in range(1, 7)},
             'up5.deconv': (f, f, 2, 2), 'dec_conv5a': (2 * f, 2 * f, 3, 3), 'dec_conv5b': (2 * f, 2 * f, 3, 3),
             'up1.deconv': (2 * f, 2 * f, 2, 2), 'dec_conv1a': (96, 2 * f + in_nc, 3, 3), 'dec_conv1b': (96, 96, 3, 3),
             'nin_a': (96, 96, 1, 1), 'nin_b': (96, 96, 1, 1), 'nin_c': (out_nc, 96, 1, 1)}
    for level in (4, 3, 2):
        convs.update({f'up{level}.deconv': (2 * f, 2 * f, 2, 2), f'dec_conv{level}a': (2 * f, 3 * f, 3, 3),
                      f'dec_conv{level}b': (2 * f, 2 * f, 3, 3)})
    bias_size = {name: shape[1] if name.endswith('deconv') else shape[0] for name, shape in convs.items()}
    return {**{f'{name}.weight': shape for name, shape in convs.items()},
            **{f'{name}.bias': (size,) for name, size in bias_size.items()}}


LAYOUTS = {'NAFNet': nafnet_base_layout, 'Restormer': restormer_layout, 'UNet': unet_layout}
OPTION_FILES = {'NAFNet': ('train_AMSNet_NAFNet.yml', 'finetune_AMSNet_NAFNet.yml'),
                'Restormer': ('train_AMSNet_Restormer.yml', 'finetune_AMSNet_Restormer.yml'),
                'UNet': ('train_AMSNet_UNet.yml', 'finetune_AMSNet_UNet.yml')}


def shipped_network(name):
    return yaml.safe_load((REPO / 'options' / name).read_text())['network_g']


def authors_checkpoint(path, layout):
    """A Lightning file as the authors' trainer writes it: the denoiser under ``net.dn.branches.0.``."""
    generator = torch.Generator().manual_seed(0)
    state = {f'net.dn.branches.0.{key}': 0.1 * torch.randn(shape, generator=generator) for key, shape in layout.items()}
    torch.save({'epoch': 99, 'global_step': 25000, 'pytorch-lightning_version': '2.4.0', 'state_dict': state}, path)
    return state


@pytest.mark.parametrize('denoiser', list(LAYOUTS))
def test_shipped_option_files_use_the_authors_settings(denoiser):
    for name in OPTION_FILES[denoiser]:
        assert shipped_network(name) == AUTHORS_SETTINGS[denoiser], name


@pytest.mark.parametrize('denoiser', list(LAYOUTS))
def test_authors_checkpoint_converts_strictly_and_runs(tmp_path, denoiser):
    """The shipped network_g (shrunk) takes the authors' file with strict loading; every tensor arrives unchanged."""
    network_g = dict(shipped_network(OPTION_FILES[denoiser][0]), **SMALL[denoiser])
    option_file = tmp_path / 'options.yml'
    option_file.write_text(yaml.safe_dump({'network_g': network_g}))
    state = authors_checkpoint(tmp_path / 'official.ckpt', LAYOUTS[denoiser](**network_g))
    lines = []
    net = convert(tmp_path / 'official.ckpt', option_file, tmp_path / 'net_g.pth', log=lines.append).eval()
    assert not any(line.startswith(('missing', 'unexpected', 'shape')) for line in lines), lines
    loaded = net.state_dict()
    assert len(loaded) == len(state)
    for key, value in state.items():
        assert torch.equal(loaded[key[len('net.dn.branches.0.'):]], value), key
    saved = torch.load(tmp_path / 'net_g.pth', map_location='cpu', weights_only=True)['params']
    assert set(saved) == set(loaded)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        output = net(image)
    assert output.shape == image.shape and torch.isfinite(output).all()


def test_spandrel_nafnet_does_not_take_the_authors_nafnet_checkpoint(tmp_path):
    """The standard (SimpleGate) NAFNet, still registered as ``NAFNet``, is a different network."""
    network_g = dict(AUTHORS_SETTINGS['NAFNet'], **SMALL['NAFNet'])
    authors_checkpoint(tmp_path / 'official.ckpt', nafnet_base_layout(**network_g))
    option_file = tmp_path / 'options.yml'
    option_file.write_text(yaml.safe_dump({'network_g': {'type': 'NAFNet', **{
        key: network_g[key] for key in ('img_channel', 'width', 'middle_blk_num', 'enc_blk_nums', 'dec_blk_nums')}}}))
    with pytest.raises(ConversionError):
        convert(tmp_path / 'official.ckpt', option_file, tmp_path / 'net_g.pth', log=lambda line: None)

"""amsnet_basicsr/convert.py (scripts/convert_official_checkpoint.py) on synthetic checkpoints with the authors' key
layout."""
import pytest
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import convert as converter
from amsnet_basicsr.networks import build_denoiser

from basicsr.archs import build_network

NETWORKS = {
    'Restormer': {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
                  'num_refinement_blocks': 1, 'heads': [1, 1, 2, 2], 'ffn_expansion_factor': 2.66, 'bias': False,
                  'LayerNorm_type': 'BiasFree'},
    'DnCNN': {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 4, 'act_mode': 'BR', 'mode': 'DnCNN'},
}


class Branches(torch.nn.Module):
    def __init__(self, denoiser):
        super().__init__()
        self.branches = torch.nn.ModuleList([denoiser])


class Scheme(torch.nn.Module):
    """The authors' module tree: LightningModule.net.dn.branches[0] is D_E."""

    def __init__(self, denoiser):
        super().__init__()
        self.dn = Branches(denoiser)
        self.head = torch.nn.Conv2d(3, 3, 1)  # an unrelated module beside the denoiser, not to be converted


class Lightning(torch.nn.Module):
    def __init__(self, denoiser):
        super().__init__()
        self.net = Scheme(denoiser)


def write_reference(tmp_path, arch, drop_key=None):
    """A Lightning-style checkpoint of a randomly initialised ``arch`` and an options file for it."""
    torch.manual_seed(0)
    original = build_network(dict(NETWORKS[arch])).eval()
    for module in original.modules():  # non-trivial BatchNorm statistics, so buffers must be converted too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = Lightning(original).state_dict()
    if drop_key:
        state.pop('net.dn.branches.0.' + drop_key)
    checkpoint = tmp_path / f'{arch}.ckpt'
    torch.save({'epoch': 3, 'global_step': 1200, 'pytorch-lightning_version': '1.9.0', 'state_dict': state,
                'optimizer_states': [], 'hyper_parameters': {'lr': 1e-4, 'arch': arch}}, checkpoint)
    option_file = tmp_path / f'{arch}.yml'
    option_file.write_text(yaml.safe_dump({'network_g': NETWORKS[arch], 'path': {'param_key_g': 'params'}}))
    return original, checkpoint, option_file


@pytest.mark.parametrize('arch', list(NETWORKS))
def test_converted_model_reproduces_original_outputs(tmp_path, arch, capsys):
    original, checkpoint, option_file = write_reference(tmp_path, arch)
    output = tmp_path / 'pretrained' / 'net_g.pth'
    assert converter.main([str(checkpoint), '-opt', str(option_file), '-o', str(output)]) == 0
    saved = torch.load(output, map_location='cpu', weights_only=True)
    assert list(saved) == ['params']
    assert not any(key.startswith('net.') or key.startswith('head') for key in saved['params'])
    restored = build_denoiser(yaml.safe_load(option_file.read_text()), output)  # as amsnet-denoise loads it
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(restored(image), original(image))
    assert 'wrote' in capsys.readouterr().out


def test_architecture_mismatch_is_refused(tmp_path, capsys):
    _, checkpoint, option_file = write_reference(tmp_path, 'Restormer')
    wider = dict(NETWORKS['Restormer'], dim=16)
    option_file.write_text(yaml.safe_dump({'network_g': wider}))
    output = tmp_path / 'net_g.pth'
    assert converter.main([str(checkpoint), '-opt', str(option_file), '-o', str(output), '--no-strict']) == 2
    assert 'shape mismatch' in capsys.readouterr().err
    assert not output.exists()
    other = tmp_path / 'dncnn.yml'
    other.write_text(yaml.safe_dump({'network_g': NETWORKS['DnCNN']}))
    assert converter.main([str(checkpoint), '-opt', str(other), '-o', str(output), '--no-strict']) == 2
    assert not output.exists()


def test_strict_by_default_and_no_strict_loads_common_keys(tmp_path, capsys):
    original, checkpoint, option_file = write_reference(tmp_path, 'DnCNN', drop_key='model.0.bias')
    output = tmp_path / 'net_g.pth'
    assert converter.main([str(checkpoint), '-opt', str(option_file), '-o', str(output)]) == 2
    captured = capsys.readouterr()
    assert 'missing keys' in captured.out and 'model.0.bias' in captured.out and '--no-strict' in captured.err
    assert not output.exists()
    assert converter.main([str(checkpoint), '-opt', str(option_file), '-o', str(output), '--no-strict']) == 0
    params = torch.load(output, map_location='cpu', weights_only=True)['params']
    assert torch.equal(params['model.0.weight'], original.state_dict()['model.0.weight'])


def test_never_overwrites_without_force_and_wrong_prefix(tmp_path, capsys):
    _, checkpoint, option_file = write_reference(tmp_path, 'DnCNN')
    output = tmp_path / 'net_g.pth'
    output.write_bytes(b'keep me')
    arguments = [str(checkpoint), '-opt', str(option_file), '-o', str(output)]
    assert converter.main(arguments) == 2
    assert output.read_bytes() == b'keep me'
    assert converter.main(arguments + ['--prefix', 'model.denoiser.', '--force']) == 2
    assert "no parameter starts with 'model.denoiser.'" in capsys.readouterr().err
    assert output.read_bytes() == b'keep me'
    assert converter.main(arguments + ['--force']) == 0
    assert 'params' in torch.load(output, map_location='cpu', weights_only=True)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith('.')) == []

"""Registration into BasicSR and the denoisers D_E: official names, parameter counts, no collisions, NAFNetBase's
padding."""
import subprocess
import sys

import pytest
import spandrel
import spandrel_extra_arches
import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.archs.nafnet_base_arch import NAFNetBase

from helpers import REPO

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

OURS = {
    ARCH_REGISTRY: ['Restormer', 'NAFNet', 'DnCNN', 'DRUNet', 'SCUNet', 'UNet', 'DeamNet', 'MaskAwareDnCNN'],
    DATASET_REGISTRY: ['NoisyImageDataset', 'SIDDValidationDataset', 'SIDDBenchmarkDataset', 'DNDDataset',
                       'PolyUDataset', 'PairedFolderDataset'],
    LOSS_REGISTRY: ['MaskedL1Loss', 'FinetuneLoss'],
    METRIC_REGISTRY: ['calculate_checkerboard'],
    MODEL_REGISTRY: ['AMSNetModel'],
}


def test_import_registers_everything_and_basicsr_imports_on_current_torchvision():
    for registry, names in OURS.items():
        for name in names:
            assert name in registry, f'{name} missing from {registry._name}'
    assert sys.modules['torchvision.transforms.functional_tensor'].rgb_to_grayscale is not None


@pytest.mark.slow
def test_registry_names_do_not_collide_with_basicsr_own():
    """Names basicsr registers by itself (a fresh interpreter, without this plugin) must stay free of ours."""
    script = ('import sys, torchvision.transforms._functional_tensor as f\n'
              "sys.modules['torchvision.transforms.functional_tensor'] = f\n"
              'import basicsr\n'
              'from basicsr.utils import registry as r\n'
              'for reg in (r.ARCH_REGISTRY, r.DATASET_REGISTRY, r.LOSS_REGISTRY, r.METRIC_REGISTRY, '
              'r.MODEL_REGISTRY):\n'
              '    print(*reg._obj_map)\n')
    own = set(subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True).stdout.split())
    assert len(own) > 20
    ours = {name for names in OURS.values() for name in names}
    assert not own & ours


@pytest.mark.parametrize('options,architecture_id', [
    ({'type': 'Restormer', 'dim': 8, 'num_blocks': [1, 1, 1, 1], 'num_refinement_blocks': 1, 'heads': [1, 1, 1, 1],
      'LayerNorm_type': 'BiasFree'}, 'Restormer'),
    ({'type': 'NAFNet', 'width': 8, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1], 'dec_blk_nums': [1, 1]}, 'NAFNet'),
    ({'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 8, 'nb': 4}, 'DnCNN'),
])
def test_spandrel_denoisers_keep_official_parameter_names(options, architecture_id):
    """spandrel recognises the state dict of our D_E as the official architecture, so official weights load."""
    spandrel_extra_arches.install(ignore_duplicates=True)  # spandrel's loader learns Restormer
    network = build_network(dict(options))
    descriptor = spandrel.ModelLoader().load_from_state_dict(network.state_dict())
    assert descriptor.architecture.id == architecture_id
    rebuilt = build_network(dict(options))
    rebuilt.load_state_dict(network.state_dict(), strict=True)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(rebuilt.eval()(x), network.eval()(x))


def test_unet_matches_the_papers_size_and_the_reference_parameter_names():
    network = build_network({'type': 'UNet', 'in_nc': 3, 'out_nc': 3, 'n_feature': 128})
    assert round(sum(p.numel() for p in network.parameters()) / 1e6, 1) == 7.9  # the paper's U-Net: 7.9 M
    names = set(network.state_dict())
    expected = {f'enc_conv{i}.weight' for i in range(7)} | {f'up{i}.deconv.weight' for i in range(1, 6)} | {
        f'dec_conv{i}{part}.weight' for i in range(1, 6) for part in 'ab'} | {f'nin_{c}.weight' for c in 'abc'}
    assert expected <= names
    small = build_network({'type': 'UNet', 'n_feature': 8})
    assert small(torch.rand(2, 3, 64, 32)).shape == (2, 3, 64, 32)


# the authors' NAFNetBase (configs/nafnet.yaml) shrunk: two encoder levels
SMALL_NAFNET_BASE = {'type': 'NAFNetBase', 'img_channel': 3, 'width': 4, 'enc_blk_nums': [1, 2], 'middle_blk_num': 1,
                     'dec_blk_nums': [2, 1], 'dw_expand': 1, 'ffn_expand': 2}


def test_nafnet_base_pads_to_its_encoder_depth_and_crops_back():
    net = build_network(dict(SMALL_NAFNET_BASE)).eval()
    assert net.padder_size == 4
    with torch.no_grad():
        assert net(torch.rand(2, 3, 13, 18)).shape == (2, 3, 13, 18)


@pytest.mark.parametrize('name', ['train_AMSNet_NAFNet.yml', 'finetune_AMSNet_NAFNet.yml'])
def test_shipped_nafnet_files_build_nafnet_base_of_the_papers_size(name):
    """Supplement: AMSNet's NAFNet has 29.056 M parameters (the standard NAFNet at these settings: 29.160 M)."""
    options = yaml.safe_load((REPO / 'options' / name).read_text())
    net = build_network(dict(options['network_g']))
    assert type(net) is NAFNetBase
    assert sum(p.numel() for p in net.parameters()) == 29_056_227
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 29.056
    assert options['amsnet']['size_multiple'] % net.padder_size == 0

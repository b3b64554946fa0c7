"""Options files and networks: read an options file, check and build a registered network from one of its sections
and load a BasicSR checkpoint into it (strictly).

Used by :class:`amsnet_basicsr.inference.AMSNetDenoiser` (``amsnet-denoise``), ``amsnet-export``, the teacher of
stage ``distill`` (:func:`amsnet_basicsr.distill.build_teacher`) and the start-up checks
(:mod:`amsnet_basicsr.options_check`). Importing it registers the AMSNet denoisers (:mod:`amsnet_basicsr.archs`);
BasicSR's datasets, losses and models are :mod:`amsnet_basicsr.plugin`'s.
"""
import inspect
import os.path as osp

import torch
import yaml

from . import (
    archs,  # noqa: F401  (registers the AMSNet denoisers that network_g may name)
    basicsr_compat,  # noqa: F401  (the torchvision alias, before basicsr is imported)
)
from .errors import OptionError, SetupError

from basicsr.archs import build_network


def load_options(path):
    try:
        with open(path, encoding='utf-8') as handle:
            options = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise SetupError(f'cannot read options file {path}: {error}') from error
    if not isinstance(options, dict) or not isinstance(options.get('network_g'), dict):
        raise SetupError(f'options file {path} has no network_g section')
    return options


def options_checkpoint(options, options_path, label='g'):
    """``path.pretrain_network_<label>`` of an options file; a relative path is read from the options file's folder
    when the file is there (``denoise.yml`` of amsnet-train-folder names ``model.pth`` beside it, so its folder can
    move), else from the current folder (BasicSR's convention)."""
    weights = (options.get('path') or {}).get(f'pretrain_network_{label}')
    if weights and not osp.isabs(weights):
        beside = osp.join(osp.dirname(osp.abspath(options_path)), weights)
        return beside if osp.exists(beside) else weights
    return weights


def select_state_dict(checkpoint, param_key, source):
    """The network's state dict inside a BasicSR checkpoint ({'params': ..., 'params_ema': ...})."""
    if not isinstance(checkpoint, dict):
        raise SetupError(f'{source}: not a state-dict checkpoint')
    if param_key != 'auto':
        if param_key not in checkpoint:
            raise SetupError(f'{source}: no {param_key!r} key (keys: {", ".join(map(str, checkpoint))})')
        state = checkpoint[param_key]
    elif 'params' in checkpoint or 'params_ema' in checkpoint:
        state = checkpoint['params' if 'params' in checkpoint else 'params_ema']
    elif all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        state = checkpoint
    else:
        raise SetupError(f'{source}: neither a BasicSR checkpoint (params/params_ema) nor a plain state dict; '
                         'convert official checkpoints with scripts/convert_official_checkpoint.py')
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state.items()}


def check_network_options(opt, key='network_g'):
    """``network_g.type`` is a registered architecture, every other key one of its constructor arguments, and the
    network builds from them (on the CPU, once, then dropped)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    section = opt.get(key)
    if not isinstance(section, dict) or 'type' not in section:
        raise OptionError(f'{key}.type is required (the denoiser D_E, e.g. Restormer, NAFNet, DnCNN, UNet)')
    arch_type = section['type']
    registered = sorted(name for name, _ in ARCH_REGISTRY)
    if arch_type not in registered:
        own = [name for name in registered if not ARCH_REGISTRY.get(name).__module__.startswith('basicsr.')]
        others = [name for name in registered if name not in own]
        raise OptionError(f'{key}.type: {arch_type!r} is not a registered denoiser; allowed: {", ".join(own)} '
                          f'(AMSNet denoisers) or one of BasicSR\'s architectures: {", ".join(others)}')
    arch = ARCH_REGISTRY.get(arch_type)
    arguments = {name: value for name, value in section.items() if name != 'type'}
    try:
        parameters = inspect.signature(arch).parameters
    except (TypeError, ValueError):
        parameters = {}
    if parameters and not any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        allowed = [name for name in parameters if name != 'self']
        for name in arguments:
            if name not in allowed:
                raise OptionError(f'{key}.{name}: not an argument of {arch_type}; allowed: {", ".join(allowed)}')
    try:  # a value the constructor refuses (nb: -1, a negative width) would otherwise be a traceback in the model
        with torch.random.fork_rng(devices=[]):  # the seeded weight initialisation of the real build stays the same
            arch(**arguments)
    except (ValueError, TypeError, RuntimeError, ArithmeticError) as error:
        raise OptionError(f'{key}: {arch_type} cannot be built from its arguments: '
                          f'{" ".join(str(error).split())}') from error


def build_denoiser(options, checkpoint_path, param_key='auto', device='cpu', *, label='g'):
    """``network_<label>`` of the options with the checkpoint's weights, in eval mode on ``device``
    (``path.param_key_<label>`` chooses ``params`` / ``params_ema`` when ``param_key`` is auto)."""
    key = f'network_{label}'
    # unknown type / arguments: one line naming the key; a constructor bug: traceback
    check_network_options(options, key)
    net = build_network(dict(options[key]))
    try:
        checkpoint = torch.load(checkpoint_path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise SetupError(f'cannot load checkpoint {checkpoint_path}: {" ".join(str(error).split())}') from error
    if param_key == 'auto':
        param_key = (options.get('path') or {}).get(f'param_key_{label}') or 'auto'
        if param_key != 'auto' and param_key not in checkpoint:
            param_key = 'auto'
    state = select_state_dict(checkpoint, param_key, checkpoint_path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise SetupError(f'checkpoint {checkpoint_path} does not match {key} '
                         f'{options[key].get("type")}: {" ".join(str(error).split())}') from error
    return net.to(device).eval()


CHANNEL_KEYS = ('in_nc', 'inp_channels', 'in_channels', 'img_channel', 'num_in_ch', 'in_chans')


def model_channels(net, network_options=None):
    """Image channels the denoiser takes: the network_g option that says so (in_nc, inp_channels, img_channel,
    ...), else the input channels of its first convolution, else 3."""
    for key in CHANNEL_KEYS:
        if isinstance((network_options or {}).get(key), int):
            return network_options[key]
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            return module.in_channels
    return 3

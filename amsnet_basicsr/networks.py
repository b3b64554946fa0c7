"""Options files and networks: read an options file, build a registered network from one of its sections and load a
BasicSR checkpoint into it (strictly).

Used by ``amsnet-denoise``, ``amsnet-export`` and the teacher of stage ``distill``; registration is the caller's
business (import :mod:`amsnet_basicsr.plugin` first).
"""
import os.path as osp

import torch
import yaml
from basicsr.archs import build_network

from . import distill
from .errors import OptionError, SetupError
from .options_check import check_network_options


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


def build_denoiser(options, checkpoint_path, param_key='auto', device='cpu', *, label='g'):
    """``network_<label>`` of the options with the checkpoint's weights, in eval mode on ``device``
    (``path.param_key_<label>`` chooses ``params`` / ``params_ema`` when ``param_key`` is auto)."""
    key = f'network_{label}'
    check_network_options(options, key)  # unknown type / arguments: one line naming the key; a constructor bug: traceback
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


def build_teacher(opt, device='cpu'):
    """(frozen teacher network in eval mode, its :class:`SchemeConfig`) from ``network_teacher``,
    ``path.pretrain_network_teacher`` and ``amsnet_teacher``."""
    if not isinstance(opt.get('network_teacher'), dict):
        raise OptionError('network_teacher: the distill stage needs the teacher D_E (network_teacher: {type: ...}) '
                          'unless datasets.train.dataroot_gt holds targets from amsnet-distill-prepare')
    weights = (opt.get('path') or {}).get('pretrain_network_teacher')
    if not weights:
        raise OptionError('path.pretrain_network_teacher: the trained teacher weights are required')
    param_key = (opt.get('path') or {}).get('param_key_teacher') or 'auto'  # a named key must exist: no fallback
    net = build_denoiser(opt, weights, param_key, device, label='teacher')
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net, distill.teacher_config(opt)


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

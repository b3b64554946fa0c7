"""Convert an official AMSNet checkpoint (PyTorch Lightning) into a BasicSR ``net_g`` file.

The authors' checkpoints hold the denoiser D_E under ``state_dict`` with the prefix ``net.dn.branches.0.``
and the parameter names of their modules. This strips the prefix, loads the result into ``network_g`` built from
a BasicSR options file (strict by default), and writes ``{'params': ...}``:

    python scripts/convert_official_checkpoint.py official.ckpt -opt options/test_SIDD.yml \\
        -o experiments/pretrained_models/AMSNet_Restormer_SIDD.pth

Missing and unexpected keys are printed; a checkpoint whose tensors do not fit the options' architecture
(shape mismatch, nothing matching, or missing/unexpected keys under strict loading) is refused with exit
status 2. The output is written atomically and never replaces an existing file without ``--force``.

Tested to load strictly (on files with the authors' key names and shapes): their NAFNet, which is ``NAFNetBase``
(NAFNet's baseline blocks, options/train_AMSNet_NAFNet.yml; spandrel's standard ``NAFNet`` does not take it), their
Restormer (options/train_AMSNet_Restormer.yml) and their UNet (options/train_AMSNet_UNet.yml). Their DeamNet
checkpoint is untested.
"""
import argparse
import sys
from pathlib import Path

import torch
import yaml

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.checkpoint import atomic_save
from amsnet_basicsr.errors import SetupError, report

from basicsr.archs import build_network

DEFAULT_PREFIX = 'net.dn.branches.0.'


class ConversionError(SetupError):
    """A checkpoint that cannot be converted (wrong file, prefix or architecture); the message says why."""


def load_checkpoint(path, trust_pickle=False):
    """The raw checkpoint dict; Lightning files may pickle hyper-parameters, hence ``trust_pickle``."""
    try:
        return torch.load(path, map_location='cpu', weights_only=not trust_pickle)
    except FileNotFoundError:
        raise ConversionError(f'{path}: no such file') from None
    except Exception as error:  # noqa: BLE001  (torch raises many types for unreadable/unsafe files)
        hint = '' if trust_pickle else (' (if it is an official checkpoint that pickles objects besides tensors '
                                        'and you trust it, retry with --trust-pickle)')
        raise ConversionError(f'{path}: cannot load: {error}{hint}') from None


def extract_denoiser(checkpoint, prefix, source):
    """Tensors under ``prefix`` in ``checkpoint['state_dict']`` (or a bare state dict), prefix stripped."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConversionError(f'{source}: no state_dict found')
    extracted = {key[len(prefix):]: value for key, value in state.items()
                 if key.startswith(prefix) and isinstance(value, torch.Tensor)}
    if not extracted:
        heads = sorted({'.'.join(key.split('.')[:4]) + '.' for key in state if isinstance(key, str)})[:10]
        raise ConversionError(f'{source}: no parameter starts with {prefix!r}; prefixes found: {", ".join(heads)}'
                              ' (choose one with --prefix)')
    return extracted


def convert(source, option_file, output, prefix=DEFAULT_PREFIX, strict=True, force=False, trust_pickle=False,
            log=print):
    """Convert ``source`` into ``output``; returns the network with the loaded weights."""
    output = Path(output)
    if output.exists() and not force:
        raise ConversionError(f'{output}: exists (use --force to overwrite)')
    with open(option_file, encoding='utf-8') as handle:
        options = yaml.safe_load(handle)
    if not isinstance(options, dict) or not isinstance(options.get('network_g'), dict):
        raise ConversionError(f'{option_file}: no network_g section')
    try:
        net = build_network(dict(options['network_g']))
    except Exception as error:  # noqa: BLE001  (unknown type, bad constructor arguments)
        raise ConversionError(f'{option_file}: cannot build network_g {options["network_g"]}: {error}') from None
    state = extract_denoiser(load_checkpoint(source, trust_pickle), prefix, source)
    expected = net.state_dict()
    mismatched = [f'{key}: checkpoint {tuple(value.shape)} vs network_g {tuple(expected[key].shape)}'
                  for key, value in state.items() if key in expected and value.shape != expected[key].shape]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    log(f'{len(state)} tensors under {prefix!r}; network_g {options["network_g"].get("type")} expects '
        f'{len(expected)}')
    for title, keys in (('missing keys (in network_g, not in the checkpoint)', missing),
                        ('unexpected keys (in the checkpoint, not in network_g)', unexpected),
                        ('shape mismatches', mismatched)):
        if keys:
            log(f'{title}: {len(keys)}')
            for key in keys:
                log(f'  {key}')
    if mismatched:
        raise ConversionError(f'{source} does not match network_g of {option_file}: {len(mismatched)} shape '
                              'mismatches (wrong architecture or options)')
    if len(unexpected) == len(state):
        raise ConversionError(f'{source}: none of its {len(state)} tensors is a parameter of network_g '
                              f'{options["network_g"].get("type")} (wrong architecture or --prefix)')
    if strict and (missing or unexpected):
        raise ConversionError(f'{source} does not match network_g of {option_file} exactly: {len(missing)} missing, '
                              f'{len(unexpected)} unexpected keys (use --no-strict to load the common part)')
    net.load_state_dict({key: value for key, value in state.items() if key in expected}, strict=strict)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({'params': net.state_dict()}, str(output))
    log(f'wrote {output} (BasicSR net_g, key "params"; load with path.pretrain_network_g, param_key_g: params)')
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='official Lightning checkpoint (.ckpt / .pth)')
    parser.add_argument('-opt', '--opt', required=True, help='BasicSR options yml whose network_g matches it')
    parser.add_argument('-o', '--output', required=True, help='BasicSR net_g file to write')
    parser.add_argument('--prefix', default=DEFAULT_PREFIX, help='prefix of the denoiser in state_dict')
    parser.add_argument('--no-strict', dest='strict', action='store_false',
                        help='load the common keys even if some are missing or unexpected')
    parser.add_argument('--force', action='store_true', help='overwrite the output')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='allow arbitrary pickled objects (only for files you trust)')
    args = parser.parse_args(argv)
    try:
        convert(args.checkpoint, args.opt, args.output, args.prefix, args.strict, args.force, args.trust_pickle)
    except (ConversionError, OSError, yaml.YAMLError) as error:
        return report('convert_official_checkpoint.py', error)
    return 0


if __name__ == '__main__':
    sys.exit(main())

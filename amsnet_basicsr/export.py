"""amsnet-export: write a single-pass denoiser (a distilled AMSNet-D student) to ONNX, with a JSON sidecar.

    amsnet-export -opt options/test_SIDD_student.yml [-c net_g_latest.pth] --output student.onnx

Only a network that runs once per image (``amsnet.single_pass: true``) is exported: the mask scheme's inference
(random masks, PD, R^3) is not one graph. The network is ``network_g`` of the options file with the checkpoint's
weights (:func:`amsnet_basicsr.networks.build_denoiser`); the ONNX graph (``torch.onnx.export``, dynamo exporter)
takes ``input`` (N, C, H, W) float32 RGB in [0, 1] of any batch, height and width, and returns ``output`` of the
same shape. The sidecar ``<output>.json`` (written after the graph; :class:`~amsnet_basicsr.inference.OnnxDenoiser`
needs it) records the architecture, scale (1), channels, expected input range, layout and size multiple, the
checkpoint and the measured agreement.

On export the graph is checked with onnxruntime against the torch output on a random 256x256 input and an odd-size
one; files are written only when the largest difference is at most ``--tolerance`` (1e-4), each atomically.
:class:`~amsnet_basicsr.inference.OnnxDenoiser` runs such a file with onnxruntime (``amsnet-denoise -c
student.onnx``, :meth:`amsnet_basicsr.inference.AMSNetDenoiser.from_onnx`).
"""
import argparse
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import SetupError, run_command
from .files import atomic_write
from .inference import FORMAT, OnnxDenoiser, onnxruntime_module, sidecar_path  # noqa: F401  (the runner lives there)

CHECK_SHAPES = ((1, 256, 256), (2, 67, 93))  # (batch, height, width): a block and an odd size


def export_onnx(net, *, channels, size_multiple=1):
    """The ONNX bytes of ``net`` (eval mode, on the CPU) with dynamic batch, height and width."""
    batch, height, width = (torch.export.Dim('batch', min=1), torch.export.Dim('height', min=1),
                            torch.export.Dim('width', min=1))
    example = torch.rand(1, channels, 64 * size_multiple, 64 * size_multiple)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(net, (example, ), dynamo=True, input_names=['input'], output_names=['output'],
                                    dynamic_shapes=({0: batch, 2: height, 3: width}, ), verbose=False)
    buffer = io.BytesIO()
    program.save(buffer)
    return buffer.getvalue()


def max_difference(net, session, *, channels, size_multiple=1, seed=0):
    """Largest |onnxruntime - torch| over random inputs of :data:`CHECK_SHAPES` (sizes rounded up to the multiple)."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, height, width in CHECK_SHAPES:
        height, width = -(-height // size_multiple) * size_multiple, -(-width // size_multiple) * size_multiple
        image = torch.rand(batch, channels, height, width, generator=generator)
        with torch.no_grad():
            expected = net(image).numpy()
        produced = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
        if produced.shape != expected.shape:
            return float('inf')
        worst = max(worst, float(np.abs(produced - expected).max()))
    return worst


def export(options, checkpoint, output, *, force=False, tolerance=1e-4, log=print):
    """Export ``network_g`` of ``options`` with the weights of ``checkpoint`` to ``output`` and its sidecar;
    returns the sidecar dict. :class:`SetupError` for a scheme network, an existing output, or a graph that
    disagrees with torch."""
    from .config import SchemeConfig
    from .networks import build_denoiser, model_channels

    config = SchemeConfig.from_options(options)
    if not config.single_pass:
        raise SetupError('amsnet.single_pass is false: only a single-pass network (a distilled student, stage '
                         'distill) can be exported; the mask scheme (MMDB, R^3) is not one graph')
    output = Path(output)
    if output.suffix.lower() != '.onnx':
        raise SetupError(f'--output {output} must end with .onnx')
    existing = [str(path) for path in (output, sidecar_path(output)) if path.exists()]
    if existing and not force:
        raise SetupError(f'{", ".join(existing)} exists (use --force to overwrite)')
    ort = onnxruntime_module()
    net = build_denoiser(options, checkpoint)
    config = config.resolved(net)  # amsnet.size_multiple: auto -> the network's own, recorded in the sidecar
    channels = model_channels(net, options.get('network_g'))
    log(f'exporting {options["network_g"]["type"]} ({sum(p.numel() for p in net.parameters()):,} parameters) '
        f'from {checkpoint}')
    data = export_onnx(net, channels=channels, size_multiple=config.size_multiple)
    session = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
    difference = max_difference(net, session, channels=channels, size_multiple=config.size_multiple)
    if not difference <= tolerance:
        raise SetupError(f'the exported graph differs from torch by {difference:.3g} (> {tolerance:g}); '
                         'nothing was written')
    info = dict(format=FORMAT, architecture=dict(options['network_g']), scale=1, channels=channels, channel_order='RGB',
                layout='NCHW', dtype='float32', input_range=[0.0, 1.0], size_multiple=config.size_multiple,
                tile=dict(size=config.tile.size, overlap=config.tile.overlap, batch=config.tile.batch),
                low_frequency_anchor=config.low_frequency_anchor,
                anchor_bias=None if config.anchor_bias is None else [list(row) for row in config.anchor_bias],
                input_name='input', output_name='output', checkpoint=os.path.abspath(checkpoint),
                checked_shapes=[list(shape) for shape in CHECK_SHAPES], max_abs_difference=difference,
                torch=torch.__version__, onnxruntime=ort.__version__)
    output.parent.mkdir(parents=True, exist_ok=True)
    sidecar_path(output).unlink(missing_ok=True)  # the sidecar goes last: a graph never pairs with an old sidecar
    atomic_write(output, lambda handle: handle.write(data))
    atomic_write(sidecar_path(output), lambda handle: handle.write(json.dumps(info, indent=2).encode()))
    log(f'wrote {output} and {sidecar_path(output).name}: onnxruntime agrees with torch to {difference:.2g}')
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='amsnet-export', description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', '--opt', required=True, help='options yml with network_g and amsnet.single_pass: true')
    parser.add_argument('-c', '--checkpoint', help='BasicSR net_g .pth (default: path.pretrain_network_g)')
    parser.add_argument('--output', required=True, help='the .onnx file to write (sidecar: <output>.json)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest accepted |onnxruntime - torch| (default: %(default)g)')
    parser.add_argument('--force', action='store_true', help='overwrite existing files')
    return parser.parse_args(argv)


def main(argv=None):
    """Console script ``amsnet-export``; exit codes as in :mod:`amsnet_basicsr.errors`."""
    from . import plugin  # noqa: F401  (registers the architectures; applies the torchvision alias before basicsr)
    from .networks import load_options

    args = parse_args(argv)

    def run():
        options = load_options(args.opt)
        checkpoint = args.checkpoint or (options.get('path') or {}).get('pretrain_network_g')
        if not checkpoint:
            raise SetupError(f'no weights: pass --checkpoint or set path.pretrain_network_g in {args.opt}')
        export(options, checkpoint, args.output, force=args.force, tolerance=args.tolerance)

    return run_command('amsnet-export', run)


if __name__ == '__main__':
    sys.exit(main())

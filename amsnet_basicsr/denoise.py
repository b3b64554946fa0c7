"""amsnet-denoise: denoise your own photos of any size with a trained AMSNet denoiser.

    python -m amsnet_basicsr.denoise INPUT OUTPUT_DIR -opt options/test_SIDD.yml -c net_g_latest.pth
    python -m amsnet_basicsr.denoise INPUT OUTPUT_DIR -c student.onnx          (an amsnet-export file: onnxruntime)

INPUT is an image file or a folder (searched recursively for .png/.tif/.tiff/.jpg/.jpeg, any case); results
keep the folder structure, file name and bit depth. The denoiser is ``network_g`` of the options file, built
with BasicSR's ``build_network`` and loaded from a BasicSR checkpoint (``params`` / ``params_ema``); the
``amsnet:`` section (:class:`amsnet_basicsr.config.SchemeConfig`) supplies every setting of the scheme and of
the tiling, which the flags override. Inference is MMDB (Eq. 6-8) then R^3 when enabled, run by
:class:`amsnet_basicsr.inference.AMSNetDenoiser` -- the object ``test.py`` runs -- on overlapped tiles with
position-seeded masks: memory is set by the tile size, and the same weights, image and settings give the same
output as ``test.py``. A single-pass network (``amsnet.single_pass: true``: a distilled student) runs once per
tile instead; exported to ONNX (``amsnet-export``), it runs with onnxruntime, its sidecar replacing the options.
``--strength S`` blends the result with the photo: S x denoised + (1 - S) x photo (1, the default: the denoiser's
output; 0: the photo).

Images: 8/16-bit PNG/TIFF, 8-bit JPEG and float32 TIFF; grayscale is replicated to the model's 3 channels
(the output is their mean) or fed to a 1-channel model as is (colour images go through a 1-channel model one
channel at a time); an alpha channel is passed through untouched. ``--ext`` writes another format, converted
explicitly where it cannot store the bit depth (:func:`amsnet_basicsr.image_io.convert_for`: 16-bit -> 8-bit for
JPEG, float -> 16-bit PNG or 8-bit JPEG). A photo too small for the mask scheme's PD stride is refused
(:meth:`~amsnet_basicsr.inference.AMSNetDenoiser.check_size`). Existing outputs are never overwritten without
``--force`` (such images are skipped). ``--adapt N`` fine-tunes a copy of the model on each photo first
(:func:`amsnet_basicsr.models.adaptation.adapted`).

This module is the command line only: flags -> ``amsnet:`` overrides (:data:`FLAG_KEYS`) ->
:class:`~amsnet_basicsr.inference.AMSNetDenoiser` -> the file loop; the photo files are
:mod:`amsnet_basicsr.image_io`'s. The process keeps the memory it frees for the next tile
(:func:`~amsnet_basicsr.inference.keep_freed_memory`).

Errors (:mod:`amsnet_basicsr.errors`): a bad flag, options file, model, input, ``--ext`` or an output folder that
cannot be created or written stops the command before any photo with one line and exit status 2. A photo that
cannot be read, denoised or written (a file system error included) is reported in one line and the others
still run; the exit status is then 1. Ctrl-C prints ``amsnet-denoise: interrupted`` and exits with 130; outputs
are written atomically, so none is left half-written.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from . import plugin  # noqa: F401  (registers the denoisers; applies the torchvision alias before basicsr)
from .errors import (
    EXIT_PARTIAL_FAILURE,
    AMSNetError,
    ImageError,
    OptionError,
    SetupError,
    describe_os_error,
    report,
    report_interrupt,
)
from .image_io import IMAGE_EXTENSIONS, find_images, join_image, read_image, split_image, write_image
from .inference import PRECISIONS, AMSNetDenoiser, check_strength, keep_freed_memory
from .models.adaptation import adapted
from .networks import load_options, model_channels, options_checkpoint  # noqa: F401  (model_channels: the channel rule)


def prepare_output(folder):
    """Create the output folder; one that cannot be created or written is a :class:`SetupError` (nothing runs)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f'output folder {folder} cannot be created ({error.strerror or error})') from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SetupError(f'output folder {folder} is not writable')


def process(denoiser, source, targets, args):
    """Read, (adapt,) denoise and write one photo; its problems are ImageErrors naming it."""
    image = read_image(source)
    try:
        denoiser.check_size(image.shape[0], image.shape[1])
    except ImageError as error:
        raise ImageError(f'{source}: {error}') from error
    colour, alpha = split_image(image)
    if args.adapt:
        denoiser = adapted(denoiser, colour, steps=args.adapt, lr=args.adapt_lr,
                           log=lambda message: tqdm.write(f'  {source.name}: {message}', file=sys.stderr))
    tiles = denoiser.tile_count(image.shape[0], image.shape[1])
    with tqdm(total=tiles, desc=f'  tiles of {source.name}', unit='tile', leave=False,
              disable=args.quiet or tiles == 1, file=sys.stderr) as bar:
        try:
            denoised = denoiser(colour, progress=bar.update)
        except ImageError as error:
            raise ImageError(f'{source}: {error}') from error
    result = join_image(denoised, alpha, image.dtype)
    write_image(targets[0], result, args.force)
    if len(targets) > 1:
        stored = image[..., 0] if image.shape[2] == 1 else image
        write_image(targets[1], np.concatenate([stored, result], axis=1), args.force)


def chunk_size_flag(text):
    """``--chunk-size``: auto, all (null) or a positive integer."""
    if text in ('auto', 'all'):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected auto, all or an integer, got {text!r}') from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='amsnet-denoise', description=__doc__.split('\n\n')[0],
                                     epilog='Scheme defaults come from the amsnet: section of the options file.')
    parser.add_argument('input', help='image file or folder (searched recursively)')
    parser.add_argument('output', help='output folder (mirrors the input folder structure)')
    parser.add_argument('-opt', '--opt', help='BasicSR options yml with network_g (and amsnet); optional with an .onnx')
    parser.add_argument('-c', '--checkpoint', help='BasicSR net_g .pth (default: path.pretrain_network_g), or a '
                        'single-pass network exported by amsnet-export (.onnx, run with onnxruntime)')
    parser.add_argument('--param-key', default='auto',
                        help='params, params_ema or auto = path.param_key_g, else params (default: %(default)s)')
    parser.add_argument('--r3', action=argparse.BooleanOptionalAction, default=None,
                        help='R^3 refinement (variant -E); default: amsnet.r3.enabled')
    parser.add_argument('--r3-times', type=int, help='R^3 copies T (default: amsnet.r3.times)')
    parser.add_argument('--r3-prob', type=float, help='R^3 replacement probability p (default: amsnet.r3.prob)')
    parser.add_argument('--num-branches', type=int, help='k (default: amsnet.num_branches)')
    parser.add_argument('--masks-per-pixel', type=int, help='m (default: amsnet.masks_per_pixel)')
    parser.add_argument('--stride', type=int, help='inference PD stride (default: amsnet.test_stride)')
    parser.add_argument('--self-ensemble', action=argparse.BooleanOptionalAction, default=None,
                        help='average over the 8 flips and rotations of each photo: 8x the time (default: '
                        'amsnet.self_ensemble)')
    parser.add_argument('--seed', type=int, help='mask seed (default: amsnet.seed)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'], help='(default: %(default)s)')
    parser.add_argument('--precision', default='fp32', choices=list(PRECISIONS),
                        help='autocast dtype around the denoiser (default: %(default)s)')
    parser.add_argument('--strength', default='1.0', metavar='S',
                        help='denoising strength in [0, 1]: S x denoised + (1 - S) x the photo; 1 = the denoiser\'s '
                        'output, 0 = the photo (default: %(default)s)')
    parser.add_argument('--tile', type=int, help='tile size in pixels; 0 = whole image at once (default: '
                        'amsnet.tile.size)')
    parser.add_argument('--tile-overlap', type=int, help='overlap of neighbouring tiles in pixels (default: '
                        'amsnet.tile.overlap)')
    parser.add_argument('--tile-batch', type=int, help='tiles per denoiser batch (default: amsnet.tile.batch)')
    parser.add_argument('--chunk-size', type=chunk_size_flag, help='sub-images per denoiser call: auto (a pixel '
                        'budget per device), all, or a number (default: amsnet.chunk_size)')
    parser.add_argument('--adapt', type=int, default=0, metavar='STEPS',
                        help='test-time adaptation: STEPS self-supervised training steps (stage mask, L_m) on each '
                        'photo before denoising it; mask-scheme models only (default: 0 = off)')
    parser.add_argument('--adapt-lr', type=float, default=1e-3, help='Adam learning rate of --adapt '
                        '(default: %(default)g)')
    parser.add_argument('--side-by-side', action='store_true', help='also write <name>_side_by_side: noisy|denoised')
    parser.add_argument('--ext', help=f'output extension: {", ".join(ext[1:] for ext in IMAGE_EXTENSIONS)} '
                        '(default: the input\'s)')
    parser.add_argument('--force', action='store_true', help='overwrite existing outputs')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser.parse_args(argv)


FLAG_KEYS = {'seed': ('seed',), 'stride': ('test_stride',), 'self_ensemble': ('self_ensemble',),
             'num_branches': ('num_branches',), 'masks_per_pixel': ('masks_per_pixel',), 'chunk_size': ('chunk_size',),
             'r3': ('r3', 'enabled'), 'r3_times': ('r3', 'times'), 'r3_prob': ('r3', 'prob'), 'tile': ('tile', 'size'),
             'tile_overlap': ('tile', 'overlap'), 'tile_batch': ('tile', 'batch')}


def flag_overrides(args):
    """The ``amsnet:`` keys the given flags set (:data:`FLAG_KEYS`), as overrides of the options' section
    (:func:`amsnet_basicsr.inference.overlay`)."""
    overrides = {}
    for flag, path in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if value == 'all':  # --chunk-size all: null, every pass in one call
            value = None
        if len(path) == 1:
            overrides[path[0]] = value
        else:
            overrides.setdefault(path[0], {})[path[1]] = value
    return overrides


def naming_flags(args, build):
    """``build()``; an :class:`OptionError` about a key that a flag set names the flag too."""
    try:
        return build()
    except OptionError as error:
        given = [f'--{flag.replace("_", "-")} {getattr(args, flag)}' for flag, path in FLAG_KEYS.items()
                 if getattr(args, flag) is not None and str(error).startswith(f'amsnet.{path[0]}')]
        if not given:
            raise
        raise OptionError(f'{", ".join(given)}: {error}') from error


def strength_flag(text):
    """``--strength`` as a float in [0, 1], or a :class:`SetupError` (one line, exit status 2)."""
    try:
        return check_strength(float(text))
    except ValueError:
        raise SetupError(f'--strength must be a number in [0, 1], got {text}') from None


def make_denoiser(args):
    """The :class:`AMSNetDenoiser` of the flags: an exported ``.onnx`` (``-opt``, when given, only supplies
    ``amsnet.tile``), or ``network_g`` of ``-opt`` with its checkpoint; the flags override the ``amsnet:`` section."""
    strength = strength_flag(args.strength)
    if args.checkpoint and args.checkpoint.lower().endswith('.onnx'):
        if args.adapt:
            raise SetupError('--adapt needs the torch model (options and .pth), not an exported .onnx')
        if args.precision != 'fp32':
            raise SetupError('--precision: an exported .onnx runs in float32 (use fp32)')
        tile = (load_options(args.opt).get('amsnet') or {}).get('tile') if args.opt else None
        return naming_flags(args, lambda: AMSNetDenoiser.from_onnx(
            args.checkpoint, tile=tile, device=args.device, overrides=flag_overrides(args), strength=strength))
    if not args.opt:
        raise SetupError('-opt is required (an options file with network_g), except with -c model.onnx')
    options = load_options(args.opt)
    checkpoint = args.checkpoint or options_checkpoint(options, args.opt)
    if not checkpoint:
        raise SetupError(f'no weights: pass --checkpoint or set path.pretrain_network_g in {args.opt}')
    denoiser = naming_flags(args, lambda: AMSNetDenoiser.from_options(
        options, checkpoint, param_key=args.param_key, device=args.device, precision=PRECISIONS[args.precision],
        overrides=flag_overrides(args), strength=strength))
    if args.adapt and denoiser.scheme.single_pass:
        raise SetupError('--adapt trains with the mask scheme; a single-pass network (amsnet.single_pass) '
                         'cannot adapt this way')
    return denoiser


def setup(args):
    """(denoiser, files, output folder) for the parsed flags; a :class:`SetupError` or :class:`OptionError` (or an
    ``OSError``) when something cannot work, before any photo is processed."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SetupError('--device cuda: no CUDA device is available (use --device cpu)')
    if args.device == 'cuda':  # same seed -> same output also on GPU: no autotuned, non-deterministic kernels
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    if args.adapt < 0:
        raise SetupError(f'--adapt must be >= 0 steps, got {args.adapt}')
    if args.ext and '.' + args.ext.lstrip('.').lower() not in IMAGE_EXTENSIONS:
        raise SetupError(f'--ext {args.ext}: cannot write this format; supported: '
                         f'{", ".join(ext[1:] for ext in IMAGE_EXTENSIONS)}')
    denoiser = make_denoiser(args)
    files = find_images(args.input, args.output)
    if not files:
        raise SetupError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {args.input}')
    output_dir = Path(args.output)
    prepare_output(output_dir)
    return denoiser, files, output_dir


def denoise_files(args, denoiser, files, output_dir):
    """Denoise every file; one that fails is reported in one line and the others still run. Exit status 0 or 1."""
    failed, skipped, done = [], [], 0
    start = time.perf_counter()
    for source, relative in tqdm(files, desc='images', unit='img', disable=args.quiet, file=sys.stderr):
        target = output_dir / relative
        if args.ext:
            target = target.with_suffix('.' + args.ext.lstrip('.'))
        targets = [target]
        if args.side_by_side:
            targets.append(target.with_name(f'{target.stem}_side_by_side{target.suffix}'))
        existing = [str(path) for path in targets if path.exists()]
        if existing and not args.force:
            tqdm.write(f'skip {source}: {", ".join(existing)} exists (use --force to overwrite)', file=sys.stderr)
            skipped.append(source)
            continue
        try:
            process(denoiser, source, targets, args)
            done += 1
        except ImageError as error:
            tqdm.write(f'error: {error}', file=sys.stderr)
            failed.append(source)
        except OSError as error:
            tqdm.write(f'error: {source}: {describe_os_error(error)}', file=sys.stderr)
            failed.append(source)
        except (ValueError, RuntimeError, cv2.error) as error:  # e.g. out of memory: the next file may still fit
            tqdm.write(f'error: {source}: {type(error).__name__}: {error}', file=sys.stderr)
            failed.append(source)
    print(f'amsnet-denoise: {done} denoised, {len(skipped)} skipped (existing), {len(failed)} failed '
          f'in {time.perf_counter() - start:.1f} s -> {output_dir}', file=sys.stderr)
    for source in failed:
        print(f'  failed: {source}', file=sys.stderr)
    return EXIT_PARTIAL_FAILURE if failed else 0


def main(argv=None):
    """The command; exit status 0, 1 (some files failed), 2 (nothing could run) or 130 (interrupted), see
    :mod:`amsnet_basicsr.errors`."""
    args = parse_args(argv)
    keep_freed_memory()
    # OpenCV logs "[ WARN ...]" lines of its own on stderr (libtiff's notes on a TIFF's extra samples, encoder
    # fallbacks); this command reports every problem itself, once, so OpenCV stays silent while it runs.
    log_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        try:
            work = setup(args)
        except (AMSNetError, OSError) as error:
            return report('amsnet-denoise', error)
        return denoise_files(args, *work)
    except KeyboardInterrupt:
        return report_interrupt('amsnet-denoise')
    finally:
        cv2.utils.logging.setLogLevel(log_level)


if __name__ == '__main__':
    sys.exit(main())

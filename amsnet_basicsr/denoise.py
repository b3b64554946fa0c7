"""amsnet-denoise: denoise your own photos of any size with a trained AMSNet denoiser.

    python -m amsnet_basicsr.denoise INPUT OUTPUT_DIR -opt options/test_SIDD.yml -c net_g_latest.pth
    python -m amsnet_basicsr.denoise INPUT OUTPUT_DIR -c student.onnx          (an amsnet-export file: onnxruntime)

INPUT is an image file or a folder (searched recursively for .png/.tif/.tiff/.jpg/.jpeg, any case); results
keep the folder structure, file name and bit depth. The denoiser is ``network_g`` of the options file, built
with BasicSR's ``build_network`` and loaded from a BasicSR checkpoint (``params`` / ``params_ema``); the
``amsnet:`` section (:class:`amsnet_basicsr.config.SchemeConfig`) supplies every setting of the scheme and of
the tiling, which the flags override. Inference is MMDB (Eq. 6-8) then R^3 when enabled, run by
:func:`amsnet_basicsr.tiling.denoise_image` -- the function ``test.py`` runs -- on overlapped tiles with
position-seeded masks: memory is set by the tile size, and the same weights, image and settings give the same
output as ``test.py``. A single-pass network (``amsnet.single_pass: true``: a distilled student) runs once per
tile instead; exported to ONNX (``amsnet-export``), it runs with onnxruntime, its sidecar replacing the options.

Images: 8/16-bit PNG/TIFF, 8-bit JPEG and float32 TIFF; grayscale is replicated to the model's 3 channels
(the output is their mean) or fed to a 1-channel model as is (colour images go through a 1-channel model one
channel at a time); an alpha channel is passed through untouched. ``--ext`` writes another format, converted
explicitly where it cannot store the bit depth (:func:`amsnet_basicsr.image_io.convert_for`: 16-bit -> 8-bit for
JPEG, float -> 16-bit PNG or 8-bit JPEG). A photo too small for the mask scheme's PD stride is refused
(:func:`check_size`). Existing outputs are never overwritten without ``--force`` (such images are skipped).

Errors (:mod:`amsnet_basicsr.errors`): a bad flag, options file, model, input, ``--ext`` or an output folder that
cannot be created or written stops the command before any photo with one line and exit status 2. A photo that
cannot be read, denoised or written (a file system error included) is reported in one line and the others
still run; the exit status is then 1. Ctrl-C prints ``amsnet-denoise: interrupted`` and exits with 130; outputs
are written atomically, so none is left half-written.
"""
import argparse
import contextlib
import copy
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from . import plugin  # noqa: F401  (registers the denoisers; applies the torchvision alias before basicsr)
from tqdm import tqdm

from . import image_io, tiling
from .config import SchemeConfig
from .errors import (EXIT_PARTIAL_FAILURE, AMSNetError, ImageError, OptionError, SetupError, describe_os_error,
                     report, report_interrupt)
from .files import atomic_write
from .masks import PositionalMasks
from .image_io import IMAGE_EXTENSIONS
from .networks import build_denoiser, load_options, model_channels, options_checkpoint

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


# ----------------------------------------------------------------------------------------------- model
# ------------------------------------------------------------------------------------------------- I/O
def read_image(path):
    """(H, W, C) array as stored (:func:`amsnet_basicsr.image_io.read`): gray, BGR or BGRA; 8/16-bit or float."""
    image = image_io.read(path)
    if image.shape[2] == 2:
        raise ImageError(f'{path}: gray + alpha images are not supported (expected gray, RGB or RGBA)')
    return image


def split_image(image):
    """Stored BGR(A)/gray array -> float RGB/gray (H, W, C) in [0, 1] and the alpha plane (or None)."""
    scale = image_io.SCALES[image.dtype]
    alpha = image[..., 3:] if image.shape[2] == 4 else None
    colour = image[..., :3][..., ::-1] if image.shape[2] >= 3 else image
    return colour.astype(np.float32) / scale, alpha


def join_image(colour, alpha, dtype):
    """Float RGB/gray in [0, 1] -> stored BGR(A)/gray array of ``dtype`` (rounded, clipped)."""
    colour = np.clip(colour, 0.0, 1.0)
    if colour.shape[2] == 3:
        colour = colour[..., ::-1]
    if np.dtype(dtype).kind != 'f':
        colour = np.rint(colour * image_io.SCALES[np.dtype(dtype)])
    out = colour.astype(dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha], axis=2)
    return out[..., 0] if out.shape[2] == 1 else np.ascontiguousarray(out)


def write_image(path, image, force):
    """Convert to what the format of ``path`` stores (:func:`amsnet_basicsr.image_io.convert_for`), encode, then
    write atomically (:func:`amsnet_basicsr.files.atomic_write`); refuse to replace an existing file unless
    ``force``. A file system error is an :class:`ImageError` naming the file."""
    if path.exists() and not force:
        raise ImageError(f'{path}: exists (use --force to overwrite)')
    image = image_io.convert_for(path, image)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in ('.jpg', '.jpeg') else []
    try:
        ok, encoded = cv2.imencode(path.suffix, image, params)
    except cv2.error as error:
        raise ImageError(f'{path}: cannot encode a {image.dtype} image as {path.suffix}: {error}') from error
    if not ok:
        raise ImageError(f'{path}: cannot encode a {image.dtype} image as {path.suffix}')
    try:
        atomic_write(path, lambda handle: handle.write(encoded.tobytes()))
    except OSError as error:
        raise ImageError(f'{path}: cannot be written ({error.strerror or error})') from error


def prepare_output(folder):
    """Create the output folder; one that cannot be created or written is a :class:`SetupError` (nothing runs)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SetupError(f'output folder {folder} cannot be created ({error.strerror or error})') from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SetupError(f'output folder {folder} is not writable')


def find_images(input_path, output_dir):
    """(file, path relative to the input root) for every image under ``input_path``, outputs excluded."""
    input_path = Path(input_path)
    if input_path.is_file():
        return [(input_path, Path(input_path.name))]
    if not input_path.is_dir():
        raise SetupError(f'input {input_path} is neither a file nor a folder')
    output_dir = Path(output_dir).resolve()
    files = []
    for path in sorted(input_path.rglob('*')):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            if output_dir == path.resolve().parent or output_dir in path.resolve().parents:
                continue
            files.append((path, path.relative_to(input_path)))
    return files


# ------------------------------------------------------------------------------------------- denoising
def denoise_array(net, colour, settings, progress=None):
    """Float (H, W, C) RGB/gray in [0, 1] -> denoised array of the same shape (see module docstring)."""
    channels = colour.shape[2]
    in_channels = settings['model_channels']
    tensor = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[None]
    if channels == 1 and in_channels == 3:
        tensor = tensor.expand(1, 3, -1, -1)
    elif channels == 3 and in_channels == 1:
        tensor = tensor.permute(1, 0, 2, 3)
    elif channels != in_channels:
        raise ImageError(f'a {channels}-channel image cannot go through a {in_channels}-channel model')
    dtype = settings['precision']
    autocast = (torch.autocast(device_type=settings['device'].type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    config = settings['config']
    with autocast:
        output = tiling.denoise_image(net, tensor.contiguous(), masks=PositionalMasks(config.seed),
                                      **config.inference_kwargs(settings['device'].type), device=settings['device'],
                                      progress=progress)
    if channels == 1 and in_channels == 3:
        output = output.mean(1, keepdim=True)
    elif channels == 3 and in_channels == 1:
        output = output.permute(1, 0, 2, 3)
    return output[0].permute(1, 2, 0).float().numpy()


ADAPT_CROP, ADAPT_BATCH = 64, 8


def adapted_network(colour, settings, log):
    """``--adapt N``: test-time adaptation. A fresh copy of the model (``AMSNetModel`` built from the options with
    the checkpoint, BasicSR's ``build_model``) takes N of its own training steps -- stage ``mask``: one random mask at
    ``amsnet.train_stride`` and L_m (Eq. 2-4), Adam at ``--adapt-lr`` -- on random 64-px crops of this noisy photo
    (smaller photos: crops of their short side)
    (batches of 8, drawn from a generator seeded with ``amsnet.seed``); its network then denoises the photo. Nothing
    but the photo itself is read; every photo adapts from the same loaded weights."""
    from basicsr.models import build_model
    adapt = settings['adapt']
    height, width, channels = colour.shape
    if channels != settings['model_channels']:
        raise ImageError(f'--adapt needs a {settings["model_channels"]}-channel photo, got {channels} channels')
    crop = min(ADAPT_CROP, height, width)
    opt = copy.deepcopy(adapt['options'])
    opt.update(is_train=True, dist=False, rank=0, world_size=1, num_gpu=int(settings['device'].type == 'cuda'),
               manual_seed=settings['config'].seed)
    opt['path'] = {'pretrain_network_g': adapt['checkpoint'], 'param_key_g': adapt['param_key'], 'strict_load_g': True}
    opt['train'] = {'stage': 'mask', 'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': adapt['lr']},
                    'scheduler': {'type': 'MultiStepLR', 'milestones': [adapt['steps'] + 1], 'gamma': 1},
                    'total_iter': adapt['steps'], 'warmup_iter': -1, 'pixel_opt': {'type': 'MaskedL1Loss'}}
    model = build_model(opt)
    photo = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)
    generator = torch.Generator().manual_seed(settings['config'].seed)
    start = time.perf_counter()
    for step in range(1, adapt['steps'] + 1):
        tops = torch.randint(height - crop + 1, (ADAPT_BATCH, ), generator=generator).tolist()
        lefts = torch.randint(width - crop + 1, (ADAPT_BATCH, ), generator=generator).tolist()
        model.feed_data({'lq': torch.stack([photo[:, top:top + crop, left:left + crop]
                                            for top, left in zip(tops, lefts)])})
        model.optimize_parameters(step)
    log(f'adapted for {adapt["steps"]} steps in {time.perf_counter() - start:.1f} s '
        f'(last L_m {model.log_dict["l_mask"]:.4f})')
    return model.net_g.eval()


def check_size(source, image, config):
    """Refuse a photo that the mask scheme cannot denoise: both sides shorter than twice the PD stride s.

    A blind-spot prediction comes from the other pixels of the masked pixel's PD sub-image. With a side of at least
    2s, rows (or columns) p and p + s of every phase p lie in the photo, so every sub-image holds two distinct
    pixels. With both sides shorter that is not guaranteed: at s = 2 every sub-image of a 1x1 or 2x2 photo, and
    the centre's of a 3x3, holds mirror copies of one pixel, which share its mask (the tile canvas is reflect-padded),
    so where it is masked nothing is left to predict it from and the output is the network's answer to an
    all-masked input (a grey 1x1 photo came out black). A single-pass network has no mask and takes any size.
    """
    if config.single_pass:
        return
    stride = config.inference_stride
    height, width = image.shape[:2]
    if max(height, width) < 2 * stride:
        raise ImageError(f'{source}: a {height}x{width} photo is too small for the mask scheme at PD stride '
                         f'{stride} (it needs at least {2 * stride} pixels on one side)')


def process(net, source, targets, settings, force, show_tiles):
    image = read_image(source)
    config = settings['config']
    check_size(source, image, config)
    colour, alpha = split_image(image)
    if settings.get('adapt'):
        net = adapted_network(colour, settings, lambda message: tqdm.write(f'  {source.name}: {message}',
                                                                           file=sys.stderr))
    plan = tiling.plan_tiles(image.shape[0], image.shape[1], config.tile.size, config.tile.overlap,
                             config.inference_stride, config.size_multiple)
    tiles = tiling.num_tiles(plan) * (8 if config.self_ensemble else 1)  # a rotated image has as many tiles
    with tqdm(total=tiles, desc=f'  tiles of {source.name}', unit='tile', leave=False,
              disable=not show_tiles or tiles == 1, file=sys.stderr) as bar:
        try:
            denoised = denoise_array(net, colour, settings, bar.update)
        except ImageError as error:
            raise ImageError(f'{source}: {error}') from error
    result = join_image(denoised, alpha, image.dtype)
    write_image(targets[0], result, force)
    if len(targets) > 1:
        stored = image[..., 0] if image.shape[2] == 1 else image
        write_image(targets[1], np.concatenate([stored, result], axis=1), force)


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


def scheme_config(args, options):
    """The options' ``amsnet:`` section with the flags that were given written over it, validated once; an error
    about a key that a flag set names the flag too."""
    section = {key: dict(value) if isinstance(value, dict) else value
               for key, value in (options.get('amsnet') or {}).items()}
    for flag, path in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if value == 'all':  # --chunk-size all: null, every pass in one call
            value = None
        if len(path) == 1:
            section[path[0]] = value
        else:
            nested = section.get(path[0])
            section[path[0]] = {**(nested if isinstance(nested, dict) else {}), path[1]: value}
    try:
        return SchemeConfig.from_section(section)
    except OptionError as error:
        given = [f'--{flag.replace("_", "-")} {getattr(args, flag)}' for flag, path in FLAG_KEYS.items()
                 if getattr(args, flag) is not None and str(error).startswith(f'amsnet.{path[0]}')]
        if not given:
            raise
        raise OptionError(f'{", ".join(given)}: {error}') from error


def make_settings(args, options, net):
    return dict(config=scheme_config(args, options), device=torch.device(args.device),
                precision=PRECISIONS[args.precision], model_channels=model_channels(net, options.get('network_g')))


def load_onnx(args):
    """(denoiser, settings) of an exported single-pass network (``-c model.onnx``, run with onnxruntime): its sidecar
    gives the channels and size multiple; ``-opt``, when given, only supplies ``amsnet.tile``."""
    from .export import OnnxDenoiser
    if args.precision != 'fp32':
        raise SetupError('--precision: an exported .onnx runs in float32 (use fp32)')
    net = OnnxDenoiser(args.checkpoint, device=args.device)
    tile = ((load_options(args.opt).get('amsnet') or {}).get('tile') if args.opt else None)
    options = {'amsnet': {'single_pass': True, 'size_multiple': net.info['size_multiple'],
                          **({'tile': tile} if tile is not None else {})}}
    settings = dict(config=scheme_config(args, options), device=torch.device('cpu'), precision=None,
                    model_channels=net.info['channels'])
    return net, settings


def setup(args):
    """(denoiser, settings, files, output folder) for the parsed flags; a :class:`SetupError` or
    :class:`OptionError` (or an ``OSError``) when something cannot work, before any photo is processed."""
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
    if args.checkpoint and args.checkpoint.lower().endswith('.onnx'):
        if args.adapt:
            raise SetupError('--adapt needs the torch model (options and .pth), not an exported .onnx')
        net, settings = load_onnx(args)
    else:
        if not args.opt:
            raise SetupError('-opt is required (an options file with network_g), except with -c model.onnx')
        options = load_options(args.opt)
        checkpoint = args.checkpoint or options_checkpoint(options, args.opt)
        if not checkpoint:
            raise SetupError(f'no weights: pass --checkpoint or set path.pretrain_network_g in {args.opt}')
        net = build_denoiser(options, checkpoint, args.param_key, args.device)
        settings = make_settings(args, options, net)
        if args.adapt:
            if settings['config'].single_pass:
                raise SetupError('--adapt trains with the mask scheme; a single-pass network (amsnet.single_pass) '
                                 'cannot adapt this way')
            settings['adapt'] = dict(options=options, checkpoint=checkpoint, steps=args.adapt, lr=args.adapt_lr,
                                     param_key=(options.get('path') or {}).get('param_key_g') or 'params'
                                     if args.param_key == 'auto' else args.param_key)
    files = find_images(args.input, args.output)
    if not files:
        raise SetupError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {args.input}')
    output_dir = Path(args.output)
    prepare_output(output_dir)
    return net, settings, files, output_dir


def denoise_files(args, net, settings, files, output_dir):
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
            process(net, source, targets, settings, args.force, not args.quiet)
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

#!/usr/bin/env python
"""Inference benchmark of AMSNet: speed, overhead against bare denoiser passes, memory, tiling.

    python benchmarks/inference_speed.py --arch DnCNN --size small                 # 256x256 blocks
    python benchmarks/inference_speed.py --arch DnCNN --size tiny --megapixels 24  # + a tiled 6000x4000 photo

Measured tables: ``benchmarks/results/inference_speed.md``.

Sections (``--sections``, default ``blocks,student,tiling``; ``large`` runs when ``--megapixels`` is given, ``photo``
when ``--photo-options`` is):

blocks   A 256x256 RGB input. ``--chunk-sizes`` (default ``auto``: the pixel budget ``amsnet.chunk_size: auto``
         uses on this device, printed with the rows) compares how many denoiser passes go into one call. Seconds
         per image for MMDB (Eq. 6-8, PD stride 2) and MMDB + R^3, through ``scheme.denoise`` with generator masks
         (one whole image, no tiling machinery) and through ``tiling.denoise_image`` untiled (position-seeded
         masks: the path of every entry point). Denoiser passes in full-image equivalents: k for
         MMDB (k branches x s^2 sub-images of 1/s^2 the area), k(1+T) with R^3. Overhead factor = pipeline time /
         (passes x time of one plain forward of the denoiser on a 1x3x256x256 input). Seconds per megapixel.
         Each precision in ``--precisions`` (autocast; fp32 = none).
student  The teacher's P-E (MMDB + R^3 with ``--arch``/``--size``) against the distilled student (NAFNet, width 16,
         1.1 M parameters, one pass) on the same 256x256 input, and the student run by onnxruntime from its ONNX
         export: seconds and speed-up over the teacher.
tiling   An image that fits (``--fit-size``, default 1024x1024): untiled vs tiled (``--tile``/``--overlap``)
         seconds, tiling overhead = tiled / untiled, max |tiled - untiled| overall, in the band of ``overlap``
         pixels around inner tile edges ("borders") and elsewhere.
large    A ``--megapixels`` image (3:2, default 24 MP = 6000x4000) denoised tiled in a fresh subprocess by the
         product's ``AMSNetDenoiser`` (as ``amsnet-denoise`` runs it; the other sections time the layers below):
         seconds, seconds per megapixel, peak RSS (CPU, ru_maxrss) or torch.cuda.max_memory_allocated (GPU); the
         same for a ``--compare-megapixels`` image (default 2) tiled and untiled, to show memory is set by the tile
         size.
photo    ``--photo-options`` (a ``denoise.yml`` of ``amsnet-train-folder``) on a ``--photo-megapixels`` image (3:2,
         default 3 and 12) through ``AMSNetDenoiser``, as ``amsnet-denoise`` runs it (on the CPU: channels-last
         tiles, freed memory kept), also at the tile sizes of ``--photo-tiles``, and the same tiles in NCHW: seconds
         and megapixels per second. ``--default-malloc`` (large and photo sections) leaves glibc's malloc as it is
         (:func:`amsnet_basicsr.inference.keep_freed_memory`).

Chunk sizes are spelled as in ``amsnet-denoise --chunk-size`` (:func:`amsnet_basicsr.denoise.chunk_size_flag`):
``auto`` (the pixel budget of ``amsnet.chunk_size: auto`` on this device), ``all`` (every pass in one call:
``chunk_size: null``) or a number of sub-images >= 1. ``--chunk-sizes`` (blocks section) lists several,
``--chunk-size`` (default 8) is the one of the tiling and large sections.

Run it on an idle machine: the script prints the load average and thread count with the figures.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import scheme, tiling
from amsnet_basicsr.config import CHUNK_PIXELS, SchemeConfig
from amsnet_basicsr.denoise import chunk_size_flag
from amsnet_basicsr.errors import run_command
from amsnet_basicsr.inference import AMSNetDenoiser, keep_freed_memory
from amsnet_basicsr.masks import GeneratorMasks, PositionalMasks

from basicsr.archs import build_network

ARCHS = {
    'DnCNN': (1, {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'act_mode': 'BR', 'mode': 'DnCNN'},
              {'tiny': dict(nc=16, nb=5), 'small': dict(nc=32, nb=8), 'paper': dict(nc=64, nb=17)}),
    'UNet': (32, {'type': 'UNet', 'in_nc': 3, 'out_nc': 3},
             {'tiny': dict(n_feature=16), 'small': dict(n_feature=32), 'paper': dict(n_feature=128)}),
    'Restormer': (8, {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'ffn_expansion_factor': 2.66,
                      'bias': False, 'LayerNorm_type': 'BiasFree'},
                  {'tiny': dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 2, 2]),
                   'small': dict(dim=16, num_blocks=[1, 2, 2, 2], num_refinement_blocks=1, heads=[1, 2, 4, 8]),
                   'paper': dict(dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4, heads=[1, 2, 4, 8])}),
    'NAFNet': (16, {'type': 'NAFNetBase', 'img_channel': 3},  # the authors' NAFNet (baseline blocks)
               {'tiny': dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1]),
                'small': dict(width=16, middle_blk_num=2, enc_blk_nums=[1, 1, 2, 2], dec_blk_nums=[1, 1, 1, 1]),
                'paper': dict(width=32, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])}),
}
# amsnet-train-folder's teacher (recipes.RECIPES['folder']: 'small'); the convolutions of a DnCNN behind a 3x3
# neighbour mean of the unmasked pixels
ARCHS['MaskAwareDnCNN'] = (1, {'type': 'MaskAwareDnCNN', 'in_nc': 3, 'out_nc': 3},
                           {'tiny': dict(nc=8, nb=3), 'small': dict(nc=32, nb=6), 'paper': dict(nc=64, nb=17)})
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# the student of the shipped distillation options (~1.1 M parameters, spandrel's NAFNet)
STUDENT = {'type': 'NAFNet', 'img_channel': 3, 'width': 16, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1, 1, 1],
           'dec_blk_nums': [1, 1, 1, 1]}


def chunk_flag(text):
    """``--chunk-size`` / ``--chunk-sizes``: amsnet-denoise's :func:`~amsnet_basicsr.denoise.chunk_size_flag` (auto,
    all or a number), the number at least 1."""
    value = chunk_size_flag(text)
    if isinstance(value, int) and value < 1:
        raise argparse.ArgumentTypeError(f'expected auto, all (every pass in one call) or an integer >= 1, got '
                                         f'{text!r}')
    return value


def chunk_settings(chunk, device):
    """(label, scheme keyword arguments) of a :func:`chunk_flag` value: a number, all (``chunk_size: null``), or auto
    (the pixel budget of ``amsnet.chunk_size: auto`` on this device)."""
    if chunk == 'auto':
        pixels = CHUNK_PIXELS.get(device.type, CHUNK_PIXELS['cuda'])
        return f'auto={pixels // 1024}k px', dict(chunk_size=None, chunk_pixels=pixels)
    if chunk == 'all':
        return 'all', dict(chunk_size=None, chunk_pixels=None)
    return str(chunk), dict(chunk_size=chunk, chunk_pixels=None)


def build(arch, size, device):
    multiple, base, sizes = ARCHS[arch]
    options = dict(base, **sizes[size])
    torch.manual_seed(0)
    net = build_network(dict(options)).to(device).eval()
    return net, multiple, options


def autocast(device, precision):
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


def timed(fn, device, repeats, warmup=1, clock=time.perf_counter):
    """Best (minimum) seconds of ``repeats`` calls after ``warmup`` calls: on a shared machine the minimum is
    the least disturbed estimate of the uncontended time. ``--clock cpu`` measures this process's CPU time
    (with one thread: the time it would take alone, minus cache/memory-bandwidth contention)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = clock()
        fn()
        sync(device)
        times.append(clock() - start)
    return min(times)


def timed_pair(fn, reference, device, repeats, clock=time.perf_counter):
    """Best times of ``fn`` and of ``reference``, measured alternately so that both see the same load."""
    fn(), reference()
    best_fn, best_reference = math.inf, math.inf
    for _ in range(repeats):
        best_reference = min(best_reference, timed(reference, device, 1, 0, clock))
        best_fn = min(best_fn, timed(fn, device, 1, 0, clock))
    return best_fn, best_reference


def test_image(height, width, device, seed=0):
    """A smooth scene plus noise (content does not change the timing; realistic values for the border test)."""
    generator = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, height)[:, None]
    xx = torch.linspace(0, 1, width)[None, :]
    image = torch.empty(1, 3, height, width)
    for channel in range(3):
        image[0, channel] = 0.5 + 0.3 * torch.sin(6 * xx + 4 * yy + 2 * channel)
    image += 0.08 * torch.randn(image.shape, generator=generator)
    return image.clamp_(0, 1).to(device)


def machine_line(device):
    load = ', '.join(f'{value:.2f}' for value in os.getloadavg())
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {os.cpu_count()} cores'
    return f'{where}; torch {torch.__version__}; {torch.get_num_threads()} threads; load average {load}'


# --------------------------------------------------------------------------------------------------- blocks
def bench_blocks(args, device):
    net, multiple, options = build(args.arch, args.size, device)
    params = sum(p.numel() for p in net.parameters())
    print(f'\n== 256x256 blocks: {args.arch} ({args.size}: {options}), {params / 1e6:.3f} M parameters, '
          f'k={args.num_branches}, T={args.r3_times}, multiple={multiple}, best of {args.repeats}, '
          f'{args.clock} clock')
    image = test_image(256, 256, device)
    k, times_r3 = args.num_branches, args.r3_times
    rows = []
    # Deliberately below AMSNetDenoiser: this section times the layers themselves (scheme.denoise with generator
    # masks, tiling.denoise_image untiled, the scheme around an identity) at each chunk size and precision.
    with torch.no_grad():
        for precision, chunk in [(p, c) for p in args.precisions for c in args.chunk_sizes]:
            label_chunk, chunking = chunk_settings(chunk, device)
            with autocast(device, precision):

                def run_scheme(refine, chunking=chunking):
                    masks = GeneratorMasks(torch.Generator(device).manual_seed(0))
                    return scheme.denoise(net, image, masks, stride=2, num_branches=k, multiple=multiple,
                                          refine_times=refine, **chunking)

                def run_positional(refine, chunking=chunking):
                    return tiling.denoise_image(net, image, masks=PositionalMasks(0), stride=2, num_branches=k,
                                                multiple=multiple, refine_times=refine, **chunking)

                def run_identity(refine, chunking=chunking):  # the scheme's own cost: masks, PD, gathers, blending
                    return scheme.denoise(torch.nn.Identity(), image, PositionalMasks(0), stride=2, num_branches=k,
                                          multiple=multiple, refine_times=refine, **chunking)

                for label, fn, refine in (('MMDB (scheme)', run_scheme, 0), ('MMDB (tiling)', run_positional, 0),
                                          ('MMDB (identity D)', run_identity, 0),
                                          ('MMDB+R3 (scheme)', run_scheme, times_r3),
                                          ('MMDB+R3 (tiling)', run_positional, times_r3),
                                          ('MMDB+R3 (identity D)', run_identity, times_r3)):
                    seconds, plain = timed_pair(lambda fn=fn, refine=refine: fn(refine), lambda: net(image), device,
                                                args.repeats, CLOCKS[args.clock])
                    passes = k * (1 + refine)
                    rows.append(dict(precision=precision, chunk=label_chunk, pipeline=label, seconds=seconds,
                                     passes=passes,
                                     plain_forward=plain, overhead=seconds / (passes * plain),
                                     seconds_per_mp=seconds / (256 * 256 / 1e6)))
    print(f'{"precision":9} {"chunk":>12} {"pipeline":20} {"s/image":>9} {"passes":>6} {"plain fwd s":>11} '
          f'{"overhead":>8} {"s/MP":>8}')
    for row in rows:
        print(f'{row["precision"]:9} {row["chunk"]!s:>12} {row["pipeline"]:20} {row["seconds"]:9.4f} '
              f'{row["passes"]:6d} {row["plain_forward"]:11.4f} {row["overhead"]:8.3f} {row["seconds_per_mp"]:8.3f}')
    return rows


# --------------------------------------------------------------------------------------------------- student
def bench_student(args, device):
    """The teacher's P-E inference (MMDB + R^3, ``--arch``/``--size``) against the distilled student's single pass
    (:data:`STUDENT`) on the same 256x256 input, both through ``tiling.denoise_image`` with ``chunk_size: auto``;
    and the student exported to ONNX, run with onnxruntime (CPU), when onnxruntime is installed."""
    teacher, multiple, _ = build(args.arch, args.size, device)
    torch.manual_seed(0)
    student = build_network(dict(STUDENT)).to(device).eval()
    image = test_image(256, 256, device)
    _, chunking = chunk_settings('auto', device)
    clock = CLOCKS[args.clock]
    rows = []
    # Deliberately below AMSNetDenoiser: the bare networks on one untiled input, torch against the bare
    # onnxruntime session, so that the speed-up is the networks' and not the wrappers'.
    with torch.no_grad():
        teacher_seconds = timed(lambda: tiling.denoise_image(
            teacher, image, masks=PositionalMasks(0), stride=2, num_branches=args.num_branches, multiple=multiple,
            refine_times=args.r3_times, **chunking), device, args.repeats, clock=clock)
        rows.append(dict(model=f'teacher {args.arch}-{args.size} P-E (MMDB+R3, T={args.r3_times})',
                         parameters=sum(p.numel() for p in teacher.parameters()), seconds=teacher_seconds))
        student_seconds = timed(lambda: tiling.denoise_image(student, image, single_pass=True, stride=1, **chunking),
                                device, args.repeats, clock=clock)
        rows.append(dict(model='student NAFNet-16 (one pass, torch)',
                         parameters=sum(p.numel() for p in student.parameters()), seconds=student_seconds))
    try:  # the [onnx] extra: onnxscript for torch's exporter, onnxruntime to run the graph
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        from amsnet_basicsr.export import export_onnx
        session = onnxruntime.InferenceSession(export_onnx(student.cpu(), channels=3),
                                               providers=['CPUExecutionProvider'])
        array = image.cpu().numpy()
        seconds = timed(lambda: session.run(None, {'input': array}), torch.device('cpu'), args.repeats, clock=clock)
        rows.append(dict(model='student NAFNet-16 (one pass, onnxruntime CPU)', parameters=rows[-1]['parameters'],
                         seconds=seconds))
    print(f'\n== teacher P-E vs distilled student, 256x256, {args.clock} clock, best of {args.repeats}')
    print(f'{"model":52} {"parameters":>11} {"s/image":>9} {"x faster":>9}')
    for row in rows:
        row['speed_up'] = teacher_seconds / row['seconds']
        print(f'{row["model"]:52} {row["parameters"]:11,d} {row["seconds"]:9.4f} {row["speed_up"]:9.1f}')
    return rows


# --------------------------------------------------------------------------------------------------- tiling
def border_band(plan, overlap):
    """Bool (H, W): pixels within ``overlap`` of an inner tile edge (where seams would appear)."""
    band = torch.zeros(plan.height, plan.width, dtype=torch.bool)
    for origins, length, padded, axis in ((plan.row_origins, plan.tile_height, plan.padded_height, 0),
                                          (plan.col_origins, plan.tile_width, plan.padded_width, 1)):
        for origin in origins:
            for edge in ((origin,) if origin > 0 else ()) + ((origin + length,) if origin + length < padded else ()):
                low, high = max(edge - overlap, 0), edge + overlap
                if axis == 0:
                    band[low:high, :] = True
                else:
                    band[:, low:high] = True
    return band


def bench_tiling(args, device):
    net, multiple, options = build(args.arch, args.size, device)
    height, width = args.fit_size
    image = test_image(height, width, device)
    plan = tiling.plan_tiles(height, width, args.tile, args.overlap, 2, multiple)
    refine = args.r3_times if args.tiling_r3 else 0
    label_chunk, chunking = chunk_settings(args.chunk_size, device)
    print(f'\n== tiling on {height}x{width}: {args.arch} ({args.size}), tile {args.tile} (-> {plan.tile_height}x'
          f'{plan.tile_width}, {tiling.num_tiles(plan)} tiles), overlap {plan.overlap}, R3 T={refine}, '
          f'chunk_size={label_chunk}')
    # Deliberately tiling.denoise_image itself: the same call tiled and untiled, at an explicit tile and overlap.
    kwargs = dict(masks=PositionalMasks(0), stride=2, num_branches=args.num_branches, multiple=multiple,
                  refine_times=refine, **chunking)
    results = {}
    with torch.no_grad():
        untiled = tiling.denoise_image(net, image, **kwargs)
        tiled = tiling.denoise_image(net, image, tile_size=args.tile, overlap=args.overlap, **kwargs)
        results['untiled_s'] = timed(lambda: tiling.denoise_image(net, image, **kwargs), device, args.repeats, 0,
                                     CLOCKS[args.clock])
        results['tiled_s'] = timed(lambda: tiling.denoise_image(net, image, tile_size=args.tile,
                                                                overlap=args.overlap, **kwargs),
                                   device, args.repeats, 0, CLOCKS[args.clock])
    difference = (tiled - untiled).abs()[0].amax(0).cpu()
    band = border_band(plan, plan.overlap)
    results.update(overhead=results['tiled_s'] / results['untiled_s'],
                   computed_area=tiling.num_tiles(plan) * plan.tile_height * plan.tile_width / (height * width),
                   max_diff=difference.max().item(), mean_diff=difference.mean().item(),
                   max_diff_borders=difference[band].max().item(),
                   max_diff_elsewhere=difference[~band].max().item() if (~band).any() else 0.0)
    print(f'untiled {results["untiled_s"]:.3f} s, tiled {results["tiled_s"]:.3f} s, tiling overhead '
          f'{results["overhead"]:.3f}x (computed area {results["computed_area"]:.3f}x); max |tiled - untiled| '
          f'{results["max_diff"] * 255:.4f}/255, mean {results["mean_diff"] * 255:.4f}/255 (borders '
          f'{results["max_diff_borders"] * 255:.4f}/255, elsewhere {results["max_diff_elsewhere"] * 255:.4f}/255)')
    return results


# ---------------------------------------------------------------------------------------------------- large
def large_denoiser(args, net, multiple, device):
    """The large section's denoiser: the product's ``AMSNetDenoiser`` (what ``amsnet-denoise`` runs on a photo)
    around ``net``, with the run's PD stride 2, ``--num-branches``, R^3 (``--large-r3``, ``--r3-times``), tiles
    (``--tile``/``--overlap``, none for the untiled child), ``--chunk-size`` and first precision, on ``device``."""
    section = {'test_stride': 2, 'num_branches': args.num_branches, 'size_multiple': multiple, 'seed': 0,
               'chunk_size': None if args.chunk_size == 'all' else args.chunk_size,
               'r3': {'enabled': True, 'times': args.r3_times} if args.large_r3 else {'enabled': False},
               'tile': {'size': None if args.child_untiled else args.tile, 'overlap': args.overlap}}
    return AMSNetDenoiser(net, SchemeConfig.from_section(section), channels=3, device=device,
                          precision=PRECISIONS[args.precisions[0]])


def child_run(args):
    """In a fresh process: denoise one image with :func:`large_denoiser`; print JSON with seconds and peak memory."""
    device = torch.device(args.device)
    malloc = malloc_line(args)
    net, multiple, _ = build(args.arch, args.size, device)
    denoiser = large_denoiser(args, net, multiple, device)
    height, width = args.child_size
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image = test_image(height, width, torch.device('cpu'))
    if args.child_untiled:
        image = image.to(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    output = denoiser(image)
    sync(device)
    seconds = time.perf_counter() - start
    result = dict(height=height, width=width, tiled=not args.child_untiled, seconds=seconds,
                  seconds_per_mp=seconds / (height * width / 1e6), peak_rss_mb=resource.getrusage(
                      resource.RUSAGE_SELF).ru_maxrss / 1024, baseline_rss_mb=baseline_kb / 1024,
                  finite=bool(torch.isfinite(output).all()), malloc=malloc)
    if device.type == 'cuda':
        result['cuda_peak_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    print('RESULT ' + json.dumps(result))


def run_child(args, height, width, untiled):
    command = [sys.executable, __file__, '--child', f'{height}x{width}', '--arch', args.arch,
               '--size', args.size, '--device', args.device, '--precisions', args.precisions[0],
               '--tile', str(args.tile), '--overlap', str(args.overlap), '--r3-times', str(args.r3_times),
               '--num-branches', str(args.num_branches)]
    command += ['--chunk-size', str(args.chunk_size)] + (['--default-malloc'] if args.default_malloc else [])
    command += ['--threads', str(args.threads)] if args.threads else []
    command += ['--untiled'] if untiled else []
    command += ['--large-r3'] if args.large_r3 else []
    completed = subprocess.run(command, capture_output=True, text=True)
    for line in completed.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    return dict(height=height, width=width, tiled=not untiled, error=completed.stderr.strip().splitlines()[-1:])


def size_for(megapixels, multiple=2):
    """3:2 landscape size of about ``megapixels`` (24 -> 6000x4000)."""
    width = int(round(math.sqrt(megapixels * 1e6 * 1.5) / multiple)) * multiple
    return int(round(width / 1.5 / multiple)) * multiple, width


def bench_large(args):
    label_chunk, _ = chunk_settings(args.chunk_size, torch.device(args.device))
    print(f'\n== large images ({args.arch} {args.size}, {args.precisions[0]}, tile {args.tile}, overlap '
          f'{args.overlap}, R3 {"T=%d" % args.r3_times if args.large_r3 else "off"}, chunk_size {label_chunk}), '
          'each in a fresh process')
    runs = [(size_for(args.megapixels), False)]
    if args.compare_megapixels:
        runs += [(size_for(args.compare_megapixels), False), (size_for(args.compare_megapixels), True)]
    results = []
    for (height, width), untiled in runs:
        result = run_child(args, height, width, untiled)
        results.append(result)
        if 'error' in result:
            print(f'{height}x{width} {"untiled" if untiled else "tiled"}: failed: {result["error"]}')
            continue
        memory = f', CUDA peak {result["cuda_peak_mb"]:.0f} MB' if 'cuda_peak_mb' in result else ''
        print(f'{height}x{width} ({height * width / 1e6:.1f} MP) {"untiled" if untiled else "tiled  "}: '
              f'{result["seconds"]:.1f} s = {result["seconds_per_mp"]:.2f} s/MP, peak RSS '
              f'{result["peak_rss_mb"]:.0f} MB (after imports {result["baseline_rss_mb"]:.0f} MB){memory}')
    return results


# --------------------------------------------------------------------------------------------------- photo
def malloc_line(args):
    """Apply amsnet-denoise's malloc settings (:func:`~amsnet_basicsr.inference.keep_freed_memory`) unless
    ``--default-malloc``; returns how the process allocates, for the printout."""
    if args.default_malloc:
        return "glibc's default malloc (--default-malloc)"
    return ('freed memory kept, as amsnet-denoise runs' if keep_freed_memory()
            else "the C library's default malloc (not glibc)")


def bench_photo(args, device):
    """MP/s of a trained ``denoise.yml`` on whole photos: the product's call (on the CPU the network gets channels-last
    tiles, and the process keeps freed memory as ``amsnet-denoise`` does) at its own tile size and each of
    ``--photo-tiles``, against the same tiling call on NCHW tiles at its own tile size (the anchor and the strength
    blend left out)."""
    malloc = malloc_line(args)
    own = AMSNetDenoiser.from_options(args.photo_options, device=device)
    tile = own.scheme.tile
    print(f'\n== photos ({args.photo_options}: {own.net.__class__.__name__}, tile {tile.size} / {tile.overlap}; '
          f'{malloc})')
    nchw_tiles = dict(masks=PositionalMasks(own.scheme.seed), **own.scheme.inference_kwargs(device.type),
                      device=device)
    runs = [(f'amsnet-denoise, tile {tile.size}', own),
            (f'NCHW tiles, tile {tile.size}', lambda photo: tiling.denoise_image(own.net, photo, **nchw_tiles))]
    runs += [(f'amsnet-denoise, tile {size}',
              AMSNetDenoiser.from_options(args.photo_options, device=device, overrides={'tile': {'size': size}}))
             for size in args.photo_tiles if size != tile.size]
    results = []
    for megapixels in args.photo_megapixels:
        image = test_image(*size_for(megapixels), device)
        for name, run in runs:
            seconds = timed(lambda photo=image, run=run: run(photo), device, args.repeats, clock=CLOCKS[args.clock])
            results.append(dict(megapixels=megapixels, height=image.shape[2], width=image.shape[3], path=name,
                                seconds=seconds, malloc=malloc))
            print(f'{image.shape[2]}x{image.shape[3]} ({image[0, 0].numel() / 1e6:.1f} MP), {name:26}: '
                  f'{seconds:.2f} s = {image[0, 0].numel() / seconds / 1e6:.2f} MP/s')
    return results


def parse_size(text):
    height, width = text.lower().split('x')
    return int(height), int(width)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--arch', default='DnCNN', choices=list(ARCHS))
    parser.add_argument('--size', default='small', choices=['tiny', 'small', 'paper'])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=list(PRECISIONS),
                        help='autocast dtypes for the blocks section (the first one for the large section)')
    parser.add_argument('--sections', default='blocks,student,tiling',
                        help='comma list of blocks, student, tiling, large, photo')
    parser.add_argument('--num-branches', type=int, default=2)
    parser.add_argument('--r3-times', type=int, default=8)
    parser.add_argument('--chunk-size', type=chunk_flag, default=8,
                        help='sub-images per denoiser call in the tiling and large sections, as amsnet-denoise '
                        '--chunk-size: auto (the pixel budget of amsnet.chunk_size: auto on this device), all (all '
                        'passes at once) or a number')
    parser.add_argument('--chunk-sizes', nargs='+', type=chunk_flag, default=['auto'],
                        help='chunk sizes compared in the blocks section (auto, all or a number, as --chunk-size)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--clock', default='wall', choices=list(CLOCKS),
                        help='wall time, or this process\'s CPU time (CPU only; robust on a shared machine)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--tile', type=int, default=512)
    parser.add_argument('--overlap', type=int, default=32)
    parser.add_argument('--fit-size', type=parse_size, default=(1024, 1024), help='HxW for the tiling section')
    parser.add_argument('--tiling-r3', action='store_true', help='R3 on in the tiling section')
    parser.add_argument('--megapixels', type=float, default=None, help='large section image size (e.g. 24)')
    parser.add_argument('--compare-megapixels', type=float, default=2.0,
                        help='also a smaller image tiled and untiled (0 = skip)')
    parser.add_argument('--large-r3', action='store_true', help='R3 on in the large section')
    parser.add_argument('--photo-options', help='photo section: a denoise.yml written by amsnet-train-folder')
    parser.add_argument('--photo-megapixels', type=float, nargs='+', default=[3.0, 12.0])
    parser.add_argument('--photo-tiles', type=int, nargs='+', default=[],
                        help='photo section: also these tile sizes (the overlap of the denoise.yml)')
    parser.add_argument('--default-malloc', action='store_true',
                        help="large and photo sections: glibc's default malloc, not amsnet-denoise's settings")
    parser.add_argument('--json', help='also write all results to this JSON file')
    parser.add_argument('--child', type=parse_size, dest='child_size', help=argparse.SUPPRESS)
    parser.add_argument('--untiled', action='store_true', dest='child_untiled', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda':
        args.clock = 'wall'
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_size:
        return child_run(args)
    device = torch.device(args.device)
    sections = set(args.sections.split(','))
    if args.megapixels:
        sections.add('large')
    if args.photo_options:
        sections.add('photo')
    print(machine_line(device))
    report = dict(arch=args.arch, size=args.size, device=args.device, threads=torch.get_num_threads(),
                  load_before=os.getloadavg())
    if 'blocks' in sections:
        report['blocks'] = bench_blocks(args, device)
    if 'student' in sections:
        report['student'] = bench_student(args, device)
    if 'tiling' in sections:
        report['tiling'] = bench_tiling(args, device)
    if 'large' in sections:
        args.megapixels = args.megapixels or 24.0
        report['large'] = bench_large(args)
    if 'photo' in sections:
        report['photo'] = bench_photo(args, device)
    report['load_after'] = os.getloadavg()
    print(f'\nload average after: {", ".join(f"{value:.2f}" for value in report["load_after"])}')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump(report, handle, indent=1)


if __name__ == '__main__':
    sys.exit(run_command('inference_speed.py', main))

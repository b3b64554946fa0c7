"""PD-aware overlapped tiling for AMSNet inference on images of any size.

Pure torch, no BasicSR. The image is cut into equal tiles on a grid that respects the PD stride and the
denoiser's size multiple, every tile (reflect-padded where it crosses the image border) runs through the full
pipeline of :func:`amsnet_basicsr.scheme.denoise` (MMDB at the inference stride, Eq. 6-8, then R^3), and the
tile outputs are blended with a smooth window over the overlaps, so no seam appears and peak memory is set by
the tile size, not by the image size.

Masks are *positional*. Instead of a ``torch.Generator`` stream (whose draws depend on the order and shape of
the calls), each random decision is a counter-based hash of (seed, stream, image index, source row, source
column): the MMDB group id of Eq. 5 (stream 0) and, for R^3 copy t, the replacement draw and the s = 1 group
id (stream 1 + t). A pixel therefore gets the same masks whichever tile, batch or order it is processed in,
a reflect-padded copy of a pixel shares the masks of its source (as in :func:`scheme.sample_mask_groups`), and
tiled and untiled outputs differ only where a tile's border falls inside the denoiser's receptive field --
which the blending window suppresses. The masks have the distribution of Eq. 5 (uniform, independent per
pixel, shared by channels); they are a different draw from ``scheme.denoise``'s generator-based ones.

Geometry. ``unit = stride * multiple``: tile sides are multiples of ``unit`` (so PD sub-images and the s = 1
R^3 input are multiples of the denoiser's ``multiple`` without further padding), tile origins are multiples of
``stride`` (so each tile's PD phases are the image's PD phases), the overlap is rounded up to a multiple of
``stride``. The canvas is the image reflect-padded at the bottom/right to a multiple of ``unit``, exactly the
padding ``scheme.pd_down`` applies to a whole image; an image no larger than one tile is a single tile, i.e.
the untiled computation.

Window. Along each axis a tile's weight is 0 over the outer ``overlap // 4`` pixels of an edge shared with a
neighbour, rises as sin^2 over the next ``overlap - 2 * (overlap // 4)`` pixels and is 1 elsewhere (edges on the
image border keep weight 1). Two neighbours overlapping by exactly ``overlap`` have complementary weights
(sin^2 + cos^2 = 1); the output is sum(w * tile) / sum(w). Predictions closer than ``overlap // 4`` to a
tile's inner edge are never used, so a denoiser whose receptive field (in image pixels, MMDB + R^3 combined)
fits in that margin gives the untiled result up to float rounding.
"""
import math
from collections import namedtuple

import torch

from . import scheme
from .errors import OptionError

_MASK32 = 0xFFFFFFFF

TilePlan = namedtuple('TilePlan', ['height', 'width', 'padded_height', 'padded_width', 'tile_height', 'tile_width',
                                   'row_origins', 'col_origins', 'overlap', 'stride', 'unit'])
TilePlan.__doc__ = """Tiling of a (height, width) image: tiles of (tile_height, tile_width) at every pair of
row_origins x col_origins on a canvas of (padded_height, padded_width) (reflect padding beyond the image)."""


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser on int64 tensors holding values in [0, 2^32) (wrap-around is intended)."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def _fmix32_int(h):
    h &= _MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def positional_bits(seed, stream, images, rows, cols):
    """32 random bits per pixel, a pure function of (seed, stream, image index, row, column).

    ``images`` is (N,), ``rows`` (N, H) and ``cols`` (N, W) int64 source coordinates (after reflection).
    Returns (N, 1, H, W) int64 in [0, 2^32). Independent of tiling, batching and processing order.
    """
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    key = _fmix32_int(_fmix32_int(seed) ^ _fmix32_int((seed >> 32) + 0x9E3779B9) ^ _fmix32_int(
        int(stream) * 0x7F4A7C15 + 0x165667B1))
    image_key = _fmix32((images.to(torch.int64) * 0x27D4EB2F + key) & _MASK32)
    row_key = _fmix32((rows.to(torch.int64) * 0x9E3779B1 + image_key[:, None]) & _MASK32)
    col_key = (cols.to(torch.int64) * 0xC2B2AE3D + 0x61C88647) & _MASK32
    return _fmix32(row_key[:, None, :, None] ^ col_key[:, None, None, :])


def positional_groups(bits, num_branches):
    """MMDB group id g in {0..k-1} (Eq. 5) from the high 16 bits of :func:`positional_bits`."""
    return (bits >> 16) % num_branches


def positional_uniform(bits):
    """A uniform draw in [0, 1) with 2^-16 resolution from the low 16 bits of :func:`positional_bits`."""
    return (bits & 0xFFFF).to(torch.float32) / 65536.0


def positional_denoise(denoiser, noisy, rows, cols, images, seed=0, stride=2, num_branches=2, masks_per_pixel=1,
                       multiple=1, chunk_size=None, refine_times=0, refine_prob=0.16):
    """:func:`scheme.denoise` (MMDB, then R^3 when ``refine_times`` > 0) with positional masks.

    ``noisy`` (N, C, H, W) holds N tiles whose pixels come from image ``images[n]`` at source coordinates
    ``rows[n]`` x ``cols[n]``. R^3 (AP-BSN, Sec. 3.5): T copies of I_DN, each pixel (all channels) replaced by
    its noisy value with probability p, MMDB at s = 1 on every copy, mean of the T results; the T*k passes of
    all N tiles go through the denoiser as one batch, ``chunk_size`` at a time.
    """
    if not 0.0 <= refine_prob <= 1.0:
        raise ValueError(f'R3 replacement probability must be in [0, 1], got {refine_prob}')
    groups = positional_groups(positional_bits(seed, 0, images, rows, cols), num_branches)
    denoised = scheme.mmdb(denoiser, noisy, stride, groups, num_branches, masks_per_pixel, multiple, chunk_size)
    if refine_times <= 0:
        return denoised
    batch, _, height, width = noisy.shape
    bits = torch.stack([positional_bits(seed, 1 + t, images, rows, cols) for t in range(refine_times)])
    replace = positional_uniform(bits) < refine_prob
    copy_groups = positional_groups(bits, num_branches).reshape(refine_times * batch, 1, height, width)
    del bits
    return scheme.random_replacement_refinement(
        lambda copies: scheme.mmdb(denoiser, copies, 1, copy_groups, num_branches, masks_per_pixel, multiple,
                                   chunk_size), noisy, denoised, replace)


def _axis_plan(size, tile, overlap, unit, stride):
    padded = -(-size // unit) * unit
    if tile is None or padded <= tile:
        return padded, padded, [0]
    count = -(-(padded - overlap) // (tile - overlap))
    # the smallest tile (multiple of unit, <= tile) with which `count` tiles overlapping by >= overlap cover it
    length = min(tile, -(-(-(-(padded - overlap) // count) + overlap) // unit) * unit)
    span = (padded - length) // stride
    origins = [(i * span // (count - 1)) * stride for i in range(count)]
    return padded, length, origins


def plan_tiles(height, width, tile_size=None, overlap=32, stride=2, multiple=1):
    """Tile grid for a (height, width) image; ``tile_size`` None (or >= the padded image) means one tile.

    ``tile_size`` is an int or (tile_h, tile_w), rounded down to a multiple of ``stride * multiple``;
    ``overlap`` is rounded up to a multiple of ``stride``. Tiles are as small as possible for the number of
    tiles needed, so the computed area is close to the image area.
    """
    unit = stride * multiple
    if height < 1 or width < 1:
        raise ValueError(f'cannot tile an empty image of {height}x{width}')
    if overlap < 0:
        raise ValueError(f'tile overlap must be >= 0, got {overlap}')
    overlap = -(-int(overlap) // stride) * stride
    tiles = [None, None]
    if tile_size is not None:
        sizes = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
        for axis, value in enumerate(sizes):
            rounded = int(value) // unit * unit
            if rounded < unit or rounded <= 2 * overlap:
                raise ValueError(f'tile size {value} must be at least stride*multiple = {unit} and larger than '
                                 f'twice the overlap ({overlap}); got tile {rounded} after rounding to {unit}')
            tiles[axis] = rounded
    padded_h, tile_h, row_origins = _axis_plan(height, tiles[0], overlap, unit, stride)
    padded_w, tile_w, col_origins = _axis_plan(width, tiles[1], overlap, unit, stride)
    return TilePlan(height, width, padded_h, padded_w, tile_h, tile_w, row_origins, col_origins, overlap, stride,
                    unit)


def _axis_window(origin, length, padded, overlap, device):
    """1-D blending weights of a tile (float64): 0 / sin^2 ramp / 1 from each edge shared with a neighbour."""
    weight = torch.ones(length, dtype=torch.float64, device=device)
    if overlap == 0:
        return weight
    margin = overlap // 4
    ramp_length = overlap - 2 * margin
    distance = torch.arange(length, dtype=torch.float64, device=device)
    ramp = torch.sin(0.5 * math.pi * ((distance + 0.5 - margin) / ramp_length).clamp(0, 1)) ** 2
    if origin > 0:
        weight = weight * ramp
    if origin + length < padded:
        weight = weight * ramp.flip(0)
    return weight


def _fold(position, size):
    """Reflect (mirror without repeating the edge) any integer positions into 0..size-1, as scheme does."""
    if size == 1:
        return torch.zeros_like(position)
    period = 2 * (size - 1)
    position = position % period
    return torch.where(position < size, position, period - position)


def num_tiles(plan):
    return len(plan.row_origins) * len(plan.col_origins)


def tiled_apply(fn, image, plan, tile_batch=1, device=None, progress=None):
    """Apply ``fn`` tile by tile and blend: the generic engine behind :func:`tiled_denoise`.

    ``image`` is (B, C, H, W) matching ``plan``; ``fn(tiles, rows, cols, images)`` gets ``tile_batch`` tiles of
    all B images stacked as (n*B, C, tile_h, tile_w) on ``device`` (default: the image's), their source rows
    (n*B, tile_h), columns (n*B, tile_w) and image indices (n*B,), and returns an output of the same spatial
    size (any channels). Accumulation stays on the image's device in float32 (float64 for float64 images),
    so with the image on the CPU and ``device`` a GPU only one tile batch lives on the GPU. ``progress`` is
    called with the number of tiles finished after every batch.
    """
    batch, _, height, width = image.shape
    if (height, width) != (plan.height, plan.width):
        raise ValueError(f'image is {height}x{width} but the tile plan is for {plan.height}x{plan.width}')
    device = torch.device(device) if device is not None else image.device
    acc_dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    positions = [(r, c) for r in plan.row_origins for c in plan.col_origins]
    single = len(positions) == 1
    output = None
    # the tiles form a full grid of separable windows, so the weight sum is the outer product of 1-D sums
    row_windows = {origin: _axis_window(origin, plan.tile_height, plan.padded_height, plan.overlap, image.device)
                   for origin in plan.row_origins}
    col_windows = {origin: _axis_window(origin, plan.tile_width, plan.padded_width, plan.overlap, image.device)
                   for origin in plan.col_origins}
    image_ids = torch.arange(batch, device=device)
    for start in range(0, len(positions), max(1, tile_batch)):
        group = positions[start:start + max(1, tile_batch)]
        tiles, rows, cols = [], [], []
        for row0, col0 in group:
            row_src = _fold(torch.arange(row0, row0 + plan.tile_height, device=image.device), height)
            col_src = _fold(torch.arange(col0, col0 + plan.tile_width, device=image.device), width)
            if row0 + plan.tile_height <= height and col0 + plan.tile_width <= width:
                tile = image[..., row0:row0 + plan.tile_height, col0:col0 + plan.tile_width]
            else:
                tile = image.index_select(-2, row_src).index_select(-1, col_src)
            tiles.append(tile.to(device))
            rows.append(row_src.to(device).expand(batch, -1))
            cols.append(col_src.to(device).expand(batch, -1))
        result = fn(torch.cat(tiles), torch.cat(rows), torch.cat(cols), image_ids.repeat(len(group)))
        result = result.to(image.device, acc_dtype).reshape(len(group), batch, -1, plan.tile_height,
                                                            plan.tile_width)
        if output is None and not single:
            output = torch.zeros(batch, result.shape[2], height, width, dtype=acc_dtype, device=image.device)
        for index, (row0, col0) in enumerate(group):
            h, w = min(plan.tile_height, height - row0), min(plan.tile_width, width - col0)
            if single:  # one tile: the untiled computation, no blending arithmetic at all
                output = result[index, :, :, :h, :w].clone()
                continue
            window = (row_windows[row0][:h, None] * col_windows[col0][None, :w]).to(acc_dtype)
            output[..., row0:row0 + h, col0:col0 + w] += result[index, :, :, :h, :w] * window
        del result
        if progress is not None:
            progress(len(group))
    if not single:
        for axis, windows, length, extent in ((-2, row_windows, plan.tile_height, height),
                                              (-1, col_windows, plan.tile_width, width)):
            weight_sum = torch.zeros(extent, dtype=torch.float64, device=image.device)
            for origin, window in windows.items():
                size = min(length, extent - origin)
                weight_sum[origin:origin + size] += window[:size]
            output /= weight_sum.to(acc_dtype).view(-1, 1) if axis == -2 else weight_sum.to(acc_dtype)
    return output.to(image.dtype) if image.dtype.is_floating_point else output


TILE_OPTION_DEFAULTS = {'size': None, 'overlap': 32, 'batch': 1}


def tile_options(section, stride=2, multiple=1):
    """Validate the ``amsnet.tile`` option section (``{size: 512, overlap: 32, batch: 1}``; None/absent or
    ``size: null`` = untiled) and return it with defaults filled in; errors name the option key."""
    if section is None:
        return dict(TILE_OPTION_DEFAULTS)
    if not isinstance(section, dict):
        raise OptionError(f'amsnet.tile must be a mapping like {{size: 512, overlap: 32}}, got {section!r}')
    unknown = sorted(set(section) - set(TILE_OPTION_DEFAULTS))
    if unknown:
        raise OptionError(f'amsnet.tile.{unknown[0]}: unknown option; allowed: size, overlap, batch')
    options = {**TILE_OPTION_DEFAULTS, **section}
    for key, low in (('overlap', 0), ('batch', 1)):
        if not isinstance(options[key], int) or isinstance(options[key], bool) or options[key] < low:
            raise OptionError(f'amsnet.tile.{key} must be an integer >= {low}, got {options[key]!r}')
    if options['size'] is not None:
        if not isinstance(options['size'], int) or isinstance(options['size'], bool):
            raise OptionError(f'amsnet.tile.size must be null or an integer, got {options["size"]!r}')
        try:
            plan_tiles(1, 1, options['size'], options['overlap'], stride, multiple)
        except ValueError as error:
            raise OptionError(f'amsnet.tile: {error}') from None
    return options


@torch.no_grad()
def tiled_denoise(denoiser, noisy, seed=0, stride=2, num_branches=2, masks_per_pixel=1, multiple=1,
                  chunk_size=None, refine_times=0, refine_prob=0.16, tile_size=None, overlap=32, tile_batch=1,
                  device=None, progress=None):
    """AMSNet inference (MMDB + optional R^3) on a (B, C, H, W) image of any size, tile by tile.

    ``tile_size`` None runs the whole image as one tile (the untiled reference with the same masks).
    Same arguments and same tiling -> bit-identical output on the same device. See the module docstring
    for the geometry, the masks and the blending window.
    """
    plan = plan_tiles(noisy.shape[-2], noisy.shape[-1], tile_size, overlap, stride, multiple)

    def fn(tiles, rows, cols, images):
        return positional_denoise(denoiser, tiles, rows, cols, images, seed, stride, num_branches,
                                  masks_per_pixel, multiple, chunk_size, refine_times, refine_prob)

    return tiled_apply(fn, noisy, plan, tile_batch, device, progress)

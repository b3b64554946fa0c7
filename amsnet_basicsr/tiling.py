"""PD-aware overlapped tiling: :func:`denoise_image`, the one inference function of AMSNet.

Pure torch, no BasicSR. The image is cut into equal tiles on a grid that respects the PD stride and the
denoiser's size multiple, every tile (reflect-padded where it crosses the image border) runs through the full
pipeline of :func:`amsnet_basicsr.scheme.denoise` (MMDB at the inference stride, Eq. 6-8, then R^3), and the
tile outputs are blended with a smooth window over the overlaps, so no seam appears and peak memory is set by
the tile size, not by the image size.

Masks come from a position-invariant mask source (:class:`amsnet_basicsr.masks.PositionalMasks`): every random
decision is a function of the pixel's source coordinates, so a pixel gets the same masks whichever tile, batch or
order it is processed in, a reflect-padded copy of a pixel shares the masks of its source, and tiled and untiled
outputs differ only where a tile's border falls inside the denoiser's receptive field -- which the blending window
suppresses. An image no larger than one tile is the untiled computation, bit for bit.

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
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import torch

from . import scheme
from .masks import MaskSource, PixelCoords
from .scheme import Denoiser

Device = Union[str, torch.device]
# called with the number of tiles finished after every tile batch
Progress = Optional[Callable[[int], Any]]
# fn(tiles, rows, cols, images) of :func:`tiled_apply`: (n, C, h, w) tiles, their source rows (n, h), columns
# (n, w) and image indices (n,) -> an (n, C', h, w) output
TileFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class TilePlan(NamedTuple):
    """Tiling of a (height, width) image: tiles of (tile_height, tile_width) at every pair of row_origins x
    col_origins on a canvas of (padded_height, padded_width) (reflect padding beyond the image)."""
    height: int
    width: int
    padded_height: int
    padded_width: int
    tile_height: int
    tile_width: int
    row_origins: list[int]
    col_origins: list[int]
    overlap: int
    stride: int
    unit: int


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


def plan_tiles(height: int, width: int, tile_size: Union[int, Sequence[int], None] = None, overlap: int = 32,
               stride: int = 2, multiple: int = 1) -> TilePlan:
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
    tiles: list[Optional[int]] = [None, None]
    if tile_size is not None:
        sizes = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
        for axis, value in enumerate(sizes):
            rounded = int(value) // unit * unit
            if rounded < unit:
                raise ValueError(f'tile size {value} is smaller than stride x size multiple = {unit} pixels')
            if rounded <= 2 * overlap:
                rounding = f' ({rounded} after rounding down to a multiple of {unit})' if rounded != value else ''
                raise ValueError(f'tile size {value}{rounding} must be larger than twice the overlap '
                                 f'(2 x {overlap} = {2 * overlap} pixels)')
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


def num_tiles(plan: TilePlan) -> int:
    """The number of tiles of ``plan``."""
    return len(plan.row_origins) * len(plan.col_origins)


def tiled_apply(fn: TileFunction, image: torch.Tensor, plan: TilePlan, tile_batch: int = 1,
                device: Optional[Device] = None, progress: Progress = None) -> torch.Tensor:
    """Apply ``fn`` tile by tile and blend: the generic engine behind :func:`denoise_image`.

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
            row_src = scheme.reflect(torch.arange(row0, row0 + plan.tile_height, device=image.device), height)
            col_src = scheme.reflect(torch.arange(col0, col0 + plan.tile_width, device=image.device), width)
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


@torch.no_grad()
def denoise_image(denoiser: Denoiser, noisy: torch.Tensor, *, masks: Optional[MaskSource] = None,
                  single_pass: bool = False, self_ensemble: bool = False, stride: int = 2, num_branches: int = 2,
                  masks_per_pixel: int = 1, multiple: int = 1, chunk_size: Optional[int] = None,
                  chunk_pixels: Optional[int] = None, refine_times: int = 0, refine_prob: float = 0.16,
                  tile_size: Union[int, Sequence[int], None] = None, overlap: int = 32, tile_batch: int = 1,
                  device: Optional[Device] = None, progress: Progress = None) -> torch.Tensor:
    """AMSNet inference (:func:`scheme.denoise`: MMDB, then R^3 when ``refine_times`` > 0) of a (B, C, H, W) image
    of any size, tile by tile; every inference entry point (``AMSNetModel.test``, ``amsnet-denoise``, the demo, the
    ablation, the benchmarks) runs this function.

    ``masks`` must be position-invariant (:class:`amsnet_basicsr.masks.PositionalMasks`) so that the output does not
    depend on the tiling. ``tile_size`` None (or at least the padded image) runs the whole image as one tile: the
    untiled computation. Same arguments -> bit-identical output on the same device. See the module docstring for
    the geometry and the blending window.

    ``single_pass=True`` is the inference of a distilled student (AMSNet-D): ``denoiser`` runs once on every tile
    (chunks of at most ``chunk_size`` tiles and ``chunk_pixels`` pixels; tile sides are multiples of ``multiple``),
    with no PD and no mask; ``masks`` and
    the scheme's arguments are unused and ``stride`` must be 1.

    ``self_ensemble=True`` averages the outputs for the 8 flips and 90-degree rotations of the image, each mapped
    back (the geometric self-ensemble of Timofte et al., "Seven ways to improve example-based single image super
    resolution", CVPR 2016; not part of AMSNet): 8x the passes, one transformed copy of the image at a time.
    """
    if self_ensemble:
        arguments: dict[str, Any] = dict(
            masks=masks, single_pass=single_pass, stride=stride, num_branches=num_branches,
            masks_per_pixel=masks_per_pixel, multiple=multiple, chunk_size=chunk_size, chunk_pixels=chunk_pixels,
            refine_times=refine_times, refine_prob=refine_prob, tile_size=tile_size, overlap=overlap,
            tile_batch=tile_batch, device=device, progress=progress)
        total = None
        for flip in (False, True):
            for turns in range(4):
                image = torch.rot90(noisy.flip(-1) if flip else noisy, turns, (-2, -1))
                output = torch.rot90(denoise_image(denoiser, image, **arguments), -turns, (-2, -1))
                output = output.flip(-1) if flip else output
                total = output if total is None else total.add_(output)
        return total.div_(8)
    if single_pass:
        if stride != 1:
            raise ValueError(f'single-pass inference has no PD: stride must be 1, got {stride}')
        # tile origins on the network's own grid (``multiple``): a network with n downsamplings is equivariant only to
        # shifts by 2^n, so tiles cut elsewhere would see their content at another phase than the whole image does
        plan = plan_tiles(noisy.shape[-2], noisy.shape[-1], tile_size, overlap, multiple, 1)

        def single(tiles, rows, cols, images):
            return scheme.run_chunked(denoiser, tiles, chunk_size=chunk_size, chunk_pixels=chunk_pixels)

        return tiled_apply(single, noisy, plan, tile_batch, device, progress)
    if not getattr(masks, 'position_invariant', False):
        raise ValueError(f'{type(masks).__name__} draws depend on the call order; tiled inference needs '
                         'position-invariant masks (PositionalMasks)')
    plan = plan_tiles(noisy.shape[-2], noisy.shape[-1], tile_size, overlap, stride, multiple)

    def fn(tiles, rows, cols, images):
        return scheme.denoise(denoiser, tiles, masks, coords=PixelCoords(images, rows, cols), stride=stride,
                              num_branches=num_branches, masks_per_pixel=masks_per_pixel, multiple=multiple,
                              chunk_size=chunk_size, chunk_pixels=chunk_pixels, refine_times=refine_times,
                              refine_prob=refine_prob)

    return tiled_apply(fn, noisy, plan, tile_batch, device, progress)

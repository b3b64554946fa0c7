"""Benchmark submission files: SIDD ``SubmitSrgb.mat`` + ``SubmitSrgb.csv`` and the DND sRGB bundle.

Writers (pure numpy / scipy; every file is written to a temporary name and renamed, so a crash never leaves a
truncated submission):

* :func:`write_sidd_submission` -- ``SubmitSrgb.mat`` with ``DenoisedBlocksSrgb`` (a 40x32 MATLAB cell array of
  uint8 256x256x3 RGB blocks), ``TimeMPSrgb`` (seconds per megapixel) and the ``OptionalData`` struct
  (MethodName, Authors, PaperTitle, Venue), as the SIDD kit's ``BenchmarkSubmission`` script saves it.
* :func:`write_sidd_csv` -- ``SubmitSrgb.csv``, the same blocks in the format of the Kaggle-hosted SIDD benchmark:
  header ``ID,BLOCK``, one row per block, ID = image * 32 + block (0..1279, the order of the 40x32 cell array),
  BLOCK = base64 of the block's raw uint8 256x256x3 bytes (C order, RGB as in the .mat). :func:`read_sidd_csv`
  decodes it back to the (40, 32, 256, 256, 3) array.
* :func:`write_dnd_image` -- one ``%04d.mat`` of the DND bundle: ``Idenoised`` (1x20 cell of float32 HxWx3 crops in
  [0, 1]), ``israw`` false, ``eval_version`` '1.0', as the DND kit's ``bundle_submissions_srgb`` saves it.

Collector used by the model's validation loop (:class:`~amsnet_basicsr.models.validation.ValidationMixin`) during
``test.py``, on a dataset whose options carry ``submission: sidd`` or ``submission: dnd``::

    collector = build_submission_collector(dataloader.dataset, self.opt)   # None without `submission:`
    ...  per batch:  collector.run_timed(self.test); collector.add(val_data, self.output)
    ...  at the end: paths = collector.finalize()

SIDD blocks are quantised exactly like BasicSR's ``tensor2img`` (clamp to [0, 1], x255, round); DND crops are the
float32 outputs clamped to [0, 1]. DND images are written as soon as their 20 crops are in, so memory stays small.
"""
import base64
import os
import os.path as osp
import time

import numpy as np
import scipy.io
import torch

from .errors import DataError, OptionError
from .files import atomic_write

SIDD_CSV_NAME = 'SubmitSrgb.csv'
SIDD_CSV_HEADER = 'ID,BLOCK'
SIDD_BLOCKS_PER_IMAGE = 32
SIDD_BLOCK_SHAPE = (256, 256, 3)

DEFAULT_OPTIONAL_DATA = {
    'MethodName': 'AMSNet',
    'Authors': '',
    'PaperTitle': 'Asymmetric Mask Scheme for Self-Supervised Real Image Denoising',
    'Venue': 'ECCV 2024',
}


def to_uint8_hwc(tensor):
    """CHW float RGB tensor -> HWC uint8 RGB, with BasicSR tensor2img's rounding (clamp, x255, round)."""
    array = tensor.detach().float().cpu().clamp_(0, 1).numpy().transpose(1, 2, 0)
    return (array * 255.0).round().astype(np.uint8)


def to_float32_hwc(tensor):
    """CHW float RGB tensor -> HWC float32 RGB clamped to [0, 1]."""
    return np.ascontiguousarray(tensor.detach().float().cpu().clamp_(0, 1).numpy().transpose(1, 2, 0))


def _cell(items, shape):
    cell = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        cell[index] = items[index]
    return cell


def _check_blocks(blocks):
    blocks = np.asarray(blocks)
    if blocks.dtype != np.uint8 or blocks.ndim != 5 or blocks.shape[-1] != 3:
        raise DataError(f'blocks must be uint8 (images, blocks, H, W, 3), got {blocks.dtype} {blocks.shape}')
    return blocks


def write_sidd_submission(path, blocks, time_mp, optional_data=None):
    """Write ``SubmitSrgb.mat``.

    Args:
        path: output file (its folder is created).
        blocks: uint8 array (images, blocks, H, W, 3) RGB -- 40 x 32 x 256 x 256 x 3 for the SIDD benchmark.
        time_mp: seconds per megapixel (``TimeMPSrgb``).
        optional_data: dict of strings for ``OptionalData`` (defaults: :data:`DEFAULT_OPTIONAL_DATA`).
    """
    blocks = _check_blocks(blocks)
    data = dict(DEFAULT_OPTIONAL_DATA)
    data.update(optional_data or {})
    contents = {
        'DenoisedBlocksSrgb': _cell(blocks, blocks.shape[:2]),
        'TimeMPSrgb': float(time_mp),
        'OptionalData': {key: str(value) for key, value in data.items()},
    }
    return atomic_write(path, lambda handle: scipy.io.savemat(handle, contents, do_compression=True))


def write_sidd_csv(path, blocks):
    """Write ``SubmitSrgb.csv`` (module docstring): header ``ID,BLOCK``; row ID = image * blocks_per_image + block,
    BLOCK = base64 of the block's raw uint8 bytes (C order, H x W x 3 RGB). ``blocks`` as for
    :func:`write_sidd_submission`. Written row by row, so the ~340 MB of the full benchmark never sit in memory."""
    blocks = _check_blocks(blocks)

    def write(handle):
        handle.write(SIDD_CSV_HEADER + '\n')
        for row, (image, block) in enumerate(np.ndindex(*blocks.shape[:2])):
            encoded = base64.b64encode(np.ascontiguousarray(blocks[image, block]).tobytes()).decode('ascii')
            handle.write(f'{row},{encoded}\n')
    return atomic_write(path, write, mode='w')


def read_sidd_csv(path, blocks_per_image=SIDD_BLOCKS_PER_IMAGE, block_shape=SIDD_BLOCK_SHAPE):
    """Decode a :func:`write_sidd_csv` file back to the uint8 (images, blocks_per_image, *block_shape) array
    ((40, 32, 256, 256, 3) for the SIDD benchmark). Raises :class:`DataError` naming the file and the line when the
    header is not ``ID,BLOCK``, the IDs are not 0, 1, 2, ... in order, a block does not decode to
    ``block_shape`` bytes, or the rows do not fill whole images."""
    block_shape = tuple(block_shape)
    size = int(np.prod(block_shape))
    decoded = []
    with open(path, 'r', newline='') as handle:
        header = handle.readline().rstrip('\r\n')
        if header != SIDD_CSV_HEADER:
            raise DataError(f'{path}: header must be {SIDD_CSV_HEADER!r}, got {header[:40]!r}')
        for line_number, line in enumerate(handle, start=2):
            line = line.rstrip('\r\n')
            if not line:
                continue
            ident, _, encoded = line.partition(',')
            if ident != str(len(decoded)):
                raise DataError(f'{path} line {line_number}: ID must be {len(decoded)}, got {ident[:20]!r}')
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError as error:
                raise DataError(f'{path} line {line_number}: BLOCK is not base64 ({error})') from error
            if len(raw) != size:
                raise DataError(f'{path} line {line_number}: BLOCK has {len(raw)} bytes, expected {size} '
                                f'(uint8 {block_shape})')
            decoded.append(np.frombuffer(raw, dtype=np.uint8).reshape(block_shape))
    if not decoded or len(decoded) % blocks_per_image:
        raise DataError(f'{path}: {len(decoded)} blocks, not a positive multiple of {blocks_per_image} per image')
    return np.stack(decoded).reshape((len(decoded) // blocks_per_image, blocks_per_image) + block_shape)


def write_dnd_image(folder, image_index, crops):
    """Write the DND bundle file ``%04d.mat`` (1-based) of one image from its denoised crops (box order).

    ``crops``: list of float32 HxWx3 RGB arrays in [0, 1] (20 for DND). Returns the path.
    """
    crops = [np.asarray(crop, dtype=np.float32) for crop in crops]
    os.makedirs(folder, exist_ok=True)
    cell = np.empty((1, len(crops)), dtype=object)
    for index, crop in enumerate(crops):
        cell[0, index] = crop
    path = osp.join(folder, f'{image_index + 1:04d}.mat')
    return atomic_write(path, lambda handle: scipy.io.savemat(
        handle, {'Idenoised': cell, 'israw': False, 'eval_version': '1.0'}))


def _ids(data, key, batch):
    value = data[key]
    if torch.is_tensor(value):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)] * batch


class SubmissionCollector:
    """Collects per-block outputs of a test run and writes the submission files (see module docstring)."""

    def __init__(self, kind, out_dir, num_images, blocks_per_image, block_shape=None, optional_data=None):
        if kind not in ('sidd', 'dnd'):
            raise OptionError(f"submission must be 'sidd' or 'dnd', got {kind!r}")
        self.kind = kind
        self.out_dir = out_dir
        self.num_images = num_images
        self.blocks_per_image = blocks_per_image
        self.optional_data = optional_data
        self.seconds = 0.0
        self.megapixels = 0.0
        self.timed_calls = 0
        self.paths = []
        if kind == 'sidd':
            self.blocks = np.zeros((num_images, blocks_per_image) + tuple(block_shape), dtype=np.uint8)
            self.filled = np.zeros((num_images, blocks_per_image), dtype=bool)
        else:
            self.pending = {}
            self.written = set()

    def start_timer(self):
        """Start timing one denoising call (CUDA synchronised)."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def stop_timer(self):
        """Add the time since :meth:`start_timer` to the measured runtime."""
        if getattr(self, '_start', None) is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - self._start
        self.timed_calls += 1
        self._start = None

    def run_timed(self, fn):
        """Call ``fn()`` (the model's ``test``) and add its wall time (CUDA synchronised) to the runtime."""
        self.start_timer()
        result = fn()
        self.stop_timer()
        return result

    def add(self, data, output):
        """Store a batch of outputs (B, 3, H, W) RGB in [0, 1] under the batch's ``image_index`` / ``block_index``."""
        batch = output.shape[0]
        images, blocks = _ids(data, 'image_index', batch), _ids(data, 'block_index', batch)
        for sample, (image, block) in enumerate(zip(images, blocks)):
            self.megapixels += output.shape[-2] * output.shape[-1] / 1e6
            if self.kind == 'sidd':
                self.blocks[image, block] = to_uint8_hwc(output[sample])
                self.filled[image, block] = True
            else:
                if image in self.written:
                    raise DataError(f'DND image {image + 1} was already written; crops must arrive in order')
                self.pending.setdefault(image, {})[block] = to_float32_hwc(output[sample])
                if len(self.pending[image]) == self.blocks_per_image:
                    crops = self.pending.pop(image)
                    self.paths.append(write_dnd_image(self.out_dir, image, [crops[b] for b in sorted(crops)]))
                    self.written.add(image)

    @property
    def time_mp(self):
        """Measured seconds per megapixel of the timed calls (0 when nothing was timed)."""
        return self.seconds / self.megapixels if self.megapixels and self.timed_calls else 0.0

    def finalize(self):
        """Write what remains and return the list of files (SIDD: ``SubmitSrgb.mat``, then ``SubmitSrgb.csv``);
        raises :class:`DataError` if blocks are missing."""
        if self.kind == 'sidd':
            if not self.filled.all():
                raise DataError(f'SIDD submission: {int((~self.filled).sum())} of {self.filled.size} blocks missing')
            self.paths.append(write_sidd_submission(osp.join(self.out_dir, 'SubmitSrgb.mat'), self.blocks,
                                                    self.time_mp, self.optional_data))
            self.paths.append(write_sidd_csv(osp.join(self.out_dir, SIDD_CSV_NAME), self.blocks))
        else:
            missing = sorted(set(range(self.num_images)) - self.written)
            if missing:
                raise DataError(f'DND submission: {len(missing)} of {self.num_images} images incomplete, '
                                 f'e.g. image {missing[0] + 1}')
        return list(self.paths)


def build_submission_collector(dataset, opt):
    """A :class:`SubmissionCollector` when ``dataset.opt['submission']`` is set, else None.

    Files go to ``<results_root>/<dataset name>/`` (``SubmitSrgb.mat`` and ``SubmitSrgb.csv``, or the DND
    ``bundled/`` folder). The
    dataset must cover every block (no ``num_blocks`` / ``block_indices`` subset). ``dataset.opt['submission_info']``
    overrides the SIDD ``OptionalData`` fields.
    """
    kind = dataset.opt.get('submission')
    if not kind:
        return None
    kind = str(kind).lower()
    if kind == 'sidd' and not hasattr(dataset, 'shape'):
        raise DataError(f"submission: sidd needs a SIDD blocks dataset, {dataset.opt['name']} is "
                         f'{type(dataset).__name__}')
    total = dataset.num_images * dataset.blocks_per_image
    if len(dataset) != total:
        raise DataError(f"submission: {dataset.opt['name']} has {len(dataset)} of {total} blocks; "
                         'remove num_blocks / block_indices')
    paths = opt.get('path', {})
    root = paths.get('results_root') or paths.get('experiments_root') or '.'
    out_dir = osp.join(root, dataset.opt['name'])
    if kind == 'dnd':
        out_dir = osp.join(out_dir, 'bundled')
    return SubmissionCollector(kind, out_dir, dataset.num_images, dataset.blocks_per_image,
                               block_shape=getattr(dataset, 'shape', (None, None, 256, 256, 3))[2:],
                               optional_data=dataset.opt.get('submission_info'))

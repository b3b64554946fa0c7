"""Real-noise evaluation sets in their published formats, registered into BasicSR's DATASET_REGISTRY.

Every item is a BasicSR-style dict: ``lq`` (and ``gt`` when the set has a reference) as CHW float32 RGB tensors in
[0, 1], ``lq_path`` (a unique name per block/crop, used by BasicSR to name saved images), and for the block sets the
integer ids ``image_index`` / ``block_index`` that the submission writers (:mod:`amsnet_basicsr.submission`) need.
A dataset without reference images has ``has_gt = False``; metrics must be skipped for it.

* :class:`SIDDValidationDataset` -- ``ValidationNoisyBlocksSrgb.mat`` / ``ValidationGtBlocksSrgb.mat`` (MATLAB v5,
  uint8 (40, 32, 256, 256, 3) RGB; flat index = image * 32 + block); ``num_blocks`` / ``block_indices`` subsets.
* :class:`SIDDBenchmarkDataset` -- ``BenchmarkNoisyBlocksSrgb.mat``, same layout, no GT (submission: SubmitSrgb.mat).
* :class:`DNDDataset` -- ``info.mat`` + ``images_srgb/0001.mat .. 0050.mat`` (MATLAB v7.3 / HDF5): 20 bounding boxes
  [r1, c1, r2, c2] (1-based, inclusive) per image -> 1000 crops of ``InoisySRGB``; no GT (submission bundle).
* :class:`PairedFolderDataset` -- a generic noisy/reference folder pair matched by file stem with optional suffixes
  (``lq_suffix`` / ``gt_suffix``), both may live in one folder; without ``dataroot_gt`` it is noisy-only.
* :class:`PolyUDataset` -- PolyU ``CroppedImages/``: ``*_real.JPG`` (noisy) / ``*_mean.JPG`` (reference).

For two folders with identical file names BasicSR's own ``PairedImageDataset`` also works (it needs a top-level
``scale: 1`` in the options).
"""
import os
import os.path as osp

import h5py
import numpy as np
import scipy.io
import torch
from torch.utils import data as data

from .. import image_io
from ..errors import DataError

from basicsr.utils.registry import DATASET_REGISTRY

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def _is_hdf5(path):
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89HDF\r\n\x1a\n' or (f.seek(512) == 512 and f.read(8) == b'\x89HDF\r\n\x1a\n')


def mat_variable_shape(path, key):
    """Shape of a MATLAB variable as MATLAB sees it (v5 via scipy.io.whosmat, v7.3 via h5py), without loading it."""
    if not osp.isfile(path):
        raise DataError(f'{path} does not exist')
    if _is_hdf5(path):
        with h5py.File(path, 'r') as f:
            if key not in f:
                raise DataError(f'{path} has no variable {key!r}; it holds {sorted(f.keys())}')
            return tuple(reversed(f[key].shape))
    variables = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    if key not in variables:
        raise DataError(f'{path} has no variable {key!r}; it holds {sorted(variables)}')
    return tuple(variables[key])


def load_mat_variable(path, key):
    """A MATLAB array in MATLAB's axis order: scipy.io.loadmat for v5 files, h5py (axes reversed) for v7.3."""
    if _is_hdf5(path):
        with h5py.File(path, 'r') as f:
            array = f[key][()]
        return np.ascontiguousarray(array.transpose(tuple(reversed(range(array.ndim)))))
    return scipy.io.loadmat(path, variable_names=[key])[key]


def _to_tensor(hwc_rgb):
    """HWC RGB uint8 (scaled by 1/255) or float array -> CHW float32 tensor."""
    array = np.asarray(hwc_rgb)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


class _SIDDBlocksDataset(data.Dataset):
    """SIDD sRGB blocks from ``.mat`` files: uint8 (images, blocks, 256, 256, 3) RGB, flat index image*blocks+block.

    Options: ``dataroot`` (folder holding ``<lq_key>.mat`` and ``<gt_key>.mat``, e.g. ``datasets/SIDD``) or
    ``dataroot_lq`` (noisy .mat) and ``dataroot_gt`` (reference .mat, optional), ``lq_key`` / ``gt_key``
    (variable names), ``num_blocks`` (N blocks evenly spaced over the flat index, for quick validation during
    training) or ``block_indices`` (explicit flat indices), ``name_prefix`` (block names ``<prefix>_<image>_<block>``,
    two digits each, 0-based). The arrays are loaded once, on first access, in the process that reads them; a subset
    keeps only its blocks in memory.
    """
    default_lq_key = None
    default_gt_key = None
    default_prefix = None

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.lq_key = opt.get('lq_key', self.default_lq_key)
        self.gt_key = opt.get('gt_key', self.default_gt_key)
        self.lq_file, self.gt_file = opt.get('dataroot_lq'), opt.get('dataroot_gt')
        if opt.get('dataroot') is not None:  # a folder holding the kit's files under their own names
            self.lq_file = self.lq_file or osp.join(opt['dataroot'], f'{self.lq_key}.mat')
            if self.gt_key is not None:
                self.gt_file = self.gt_file or osp.join(opt['dataroot'], f'{self.gt_key}.mat')
        if self.lq_file is None:
            raise DataError(f"{type(self).__name__} ({opt.get('name')}): set dataroot (folder with "
                             f'{self.lq_key}.mat) or dataroot_lq (the .mat file)')
        self.prefix = opt.get('name_prefix', self.default_prefix)
        self.has_gt = self.gt_file is not None
        shape = mat_variable_shape(self.lq_file, self.lq_key)
        if len(shape) != 5 or shape[-1] != 3:
            raise DataError(f'{self.lq_file}: {self.lq_key} has shape {shape}, expected (images, blocks, H, W, 3)')
        if self.has_gt and mat_variable_shape(self.gt_file, self.gt_key) != shape:
            raise DataError(f'{self.gt_file}: {self.gt_key} has shape {mat_variable_shape(self.gt_file, self.gt_key)}'
                             f', {self.lq_file}: {self.lq_key} has {shape}')
        self.shape = shape
        self.num_images, self.blocks_per_image = shape[:2]
        total = self.num_images * self.blocks_per_image
        if opt.get('block_indices') is not None:
            indices = [int(i) for i in opt['block_indices']]
            bad = [i for i in indices if not 0 <= i < total]
            if bad:
                raise DataError(f'block_indices {bad} out of range [0, {total}) for {self.lq_file}')
        elif opt.get('num_blocks') is not None:
            count = int(opt['num_blocks'])
            if not 1 <= count <= total:
                raise DataError(f'num_blocks must be in [1, {total}], got {count}')
            indices = np.unique(np.linspace(0, total - 1, count).round().astype(int)).tolist()
        else:
            indices = list(range(total))
        self.indices = indices
        self._lq = None
        self._gt = None

    def _blocks(self, path, key):
        array = load_mat_variable(path, key)
        if array.shape != self.shape or array.dtype != np.uint8:
            raise DataError(f'{path}: {key} is {array.dtype} {array.shape}, expected uint8 {self.shape}')
        flat = array.reshape((-1, ) + tuple(self.shape[2:]))
        return flat if len(self.indices) == flat.shape[0] else flat[self.indices].copy()

    def _load(self):
        self._lq = self._blocks(self.lq_file, self.lq_key)
        if self.has_gt:
            self._gt = self._blocks(self.gt_file, self.gt_key)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if self._lq is None:
            self._load()
        flat = self.indices[index]
        image, block = divmod(flat, self.blocks_per_image)
        name = f'{self.prefix}_{image:02d}_{block:02d}'
        item = {'lq': _to_tensor(self._lq[index]), 'lq_path': name, 'image_index': image, 'block_index': block}
        if self.has_gt:
            item['gt'] = _to_tensor(self._gt[index])
            item['gt_path'] = name
        return item


@DATASET_REGISTRY.register()
class SIDDValidationDataset(_SIDDBlocksDataset):
    """SIDD sRGB validation: 40 x 32 = 1280 noisy/GT 256x256 blocks; the paper's SIDD val numbers."""
    default_lq_key = 'ValidationNoisyBlocksSrgb'
    default_gt_key = 'ValidationGtBlocksSrgb'
    default_prefix = 'SIDD_val'


@DATASET_REGISTRY.register()
class SIDDBenchmarkDataset(_SIDDBlocksDataset):
    """SIDD sRGB benchmark: 1280 noisy blocks, no GT; results go to SubmitSrgb.mat (online evaluation)."""
    default_lq_key = 'BenchmarkNoisyBlocksSrgb'
    default_gt_key = None
    default_prefix = 'SIDD_bench'

    def __init__(self, opt):
        if opt.get('dataroot_gt') is not None or opt.get('gt_key') is not None:
            raise DataError('SIDDBenchmarkDataset has no GT; remove dataroot_gt / gt_key '
                            '(or use SIDDValidationDataset)')
        super().__init__(opt)


def read_dnd_boxes(info_path):
    """DND bounding boxes from ``info.mat`` (v7.3): int array (images, 20, 4) of [r1, c1, r2, c2], 1-based inclusive.

    ``info['boundingboxes']`` holds one HDF5 object reference per image, each to a MATLAB 20x4 double matrix
    (stored transposed, 4x20, in HDF5) -- as read by the DND kit's ``dnd_denoise.py``.
    """
    if not osp.isfile(info_path):
        raise DataError(f'DND: {info_path} does not exist (expected <dnd>/info.mat and <dnd>/images_srgb/)')
    with h5py.File(info_path, 'r') as f:
        if 'info' not in f or 'boundingboxes' not in f['info']:
            raise DataError(f"DND: {info_path} has no info['boundingboxes']")
        info = f['info']
        refs = np.asarray(info['boundingboxes']).ravel()
        boxes = [np.asarray(info[ref]).T for ref in refs]
    boxes = np.stack(boxes).round().astype(np.int64)
    if boxes.ndim != 3 or boxes.shape[2] != 4:
        raise DataError(f'DND: {info_path} boundingboxes have shape {boxes.shape}, expected (images, boxes, 4)')
    return boxes


@DATASET_REGISTRY.register()
class DNDDataset(data.Dataset):
    """DND sRGB benchmark: 50 images x 20 bounding-box crops (512x512) = 1000 noisy crops, no GT.

    Options: ``dataroot_lq`` (the folder holding ``info.mat`` and ``images_srgb/``). ``InoisySRGB`` (float, [0, 1],
    stored by MATLAB v7.3 as (3, W, H)) is read crop by crop through h5py slicing. Items are named
    ``DND_<image:04d>_<box:02d>`` (1-based, like the kit's ``%04d_%02d.mat``); ``image_index`` / ``block_index``
    are 0-based.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.root = opt['dataroot_lq']
        self.boxes = read_dnd_boxes(osp.join(self.root, 'info.mat'))
        self.num_images, self.blocks_per_image = self.boxes.shape[:2]
        missing = [self._image_path(i) for i in range(self.num_images) if not osp.isfile(self._image_path(i))]
        if missing:
            raise DataError(f'DND: {len(missing)} image file(s) missing, e.g. {missing[0]}')
        self.has_gt = False

    def _image_path(self, image):
        return osp.join(self.root, 'images_srgb', f'{image + 1:04d}.mat')

    def __len__(self):
        return self.num_images * self.blocks_per_image

    def __getitem__(self, index):
        image, box = divmod(index, self.blocks_per_image)
        r1, c1, r2, c2 = (int(v) for v in self.boxes[image, box])
        with h5py.File(self._image_path(image), 'r') as f:
            crop = f['InoisySRGB'][:, c1 - 1:c2, r1 - 1:r2]  # HDF5 (3, W, H) -> (3, w, h)
        lq = torch.from_numpy(np.ascontiguousarray(crop.transpose(0, 2, 1), dtype=np.float32))
        return {'lq': lq, 'lq_path': f'DND_{image + 1:04d}_{box + 1:02d}', 'image_index': image, 'block_index': box}


@DATASET_REGISTRY.register()
class PairedFolderDataset(data.Dataset):
    """Noisy images and their references matched by file stem, in one folder or two (no resizing, no crops).

    Options: ``dataroot_lq`` (noisy folder), ``dataroot_gt`` (reference folder; may equal ``dataroot_lq``; omit it
    for noisy-only testing), ``lq_suffix`` / ``gt_suffix`` (stem endings, case-insensitive, default ''), e.g.
    ``x_real.JPG`` <-> ``x_mean.JPG``. Extensions may differ. Images are read by
    :func:`amsnet_basicsr.image_io.read_rgb` (any bit depth).
    """
    default_lq_suffix = ''
    default_gt_suffix = ''

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.lq_folder = opt['dataroot_lq']
        self.gt_folder = opt.get('dataroot_gt')
        self.has_gt = self.gt_folder is not None
        lq_suffix = opt.get('lq_suffix', self.default_lq_suffix).lower()
        gt_suffix = opt.get('gt_suffix', self.default_gt_suffix).lower()
        if self.has_gt and osp.normpath(self.lq_folder) == osp.normpath(self.gt_folder) and lq_suffix == gt_suffix:
            raise DataError('dataroot_lq equals dataroot_gt: set different lq_suffix / gt_suffix')
        lq_files = self._scan(self.lq_folder, lq_suffix)
        if not lq_files:
            raise DataError(f'no image whose stem ends with {lq_suffix!r} in {self.lq_folder}')
        self.paths = []
        if self.has_gt:
            gt_files = self._scan(self.gt_folder, gt_suffix)
            missing = [lq_files[base] for base in lq_files if base not in gt_files]
            if missing:
                raise DataError(f'{len(missing)} noisy image(s) without a reference '
                                        f'(suffix {gt_suffix!r}) in {self.gt_folder}, e.g. {missing[0]}')
        for base in sorted(lq_files):
            self.paths.append({'lq_path': lq_files[base], 'gt_path': gt_files[base] if self.has_gt else None})

    @staticmethod
    def _scan(folder, suffix):
        if not osp.isdir(folder):
            raise DataError(f'folder {folder} does not exist')
        files = {}
        for name in sorted(os.listdir(folder)):
            stem, ext = osp.splitext(name)
            if ext.lower() in IMAGE_EXTENSIONS and stem.lower().endswith(suffix):
                files[stem[:len(stem) - len(suffix)].lower()] = osp.join(folder, name)
        return files

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        paths = self.paths[index]
        lq = image_io.read_rgb(paths['lq_path'])
        item = {'lq': _to_tensor(lq), 'lq_path': paths['lq_path']}
        if self.has_gt:
            gt = image_io.read_rgb(paths['gt_path'])
            if gt.shape != lq.shape:
                raise DataError(f"{paths['gt_path']} is {gt.shape}, {paths['lq_path']} is {lq.shape}")
            item['gt'] = _to_tensor(gt)
            item['gt_path'] = paths['gt_path']
        return item


@DATASET_REGISTRY.register()
class PolyUDataset(PairedFolderDataset):
    """PolyU real-world noisy images: ``CroppedImages/*_real.JPG`` (noisy) / ``*_mean.JPG`` (reference), 100 pairs
    of 512x512. Options: ``dataroot_lq`` (the CroppedImages folder); ``dataroot_gt`` defaults to the same folder."""
    default_lq_suffix = '_real'
    default_gt_suffix = '_mean'

    def __init__(self, opt):
        opt = dict(opt)
        opt.setdefault('dataroot_gt', opt['dataroot_lq'])
        super().__init__(opt)

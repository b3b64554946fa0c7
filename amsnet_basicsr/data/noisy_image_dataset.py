"""Noisy-only training data: the only images AMSNet ever trains on."""
import os
import random
import re
from os import path as osp

import cv2

from .. import image_io
from ..errors import ImageError, OptionError

from basicsr.data.single_image_dataset import SingleImageDataset
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, get_root_logger, img2tensor, scandir
from basicsr.utils.registry import DATASET_REGISTRY

BAD_IMAGE_POLICIES = ('skip', 'error')
_META_LINE = re.compile(r'^(?P<file>\S+)\s+\((?P<h>\d+),\s*(?P<w>\d+),\s*(?P<c>\d+)\)')


def decode_image(content, path):
    """Bytes of an image file -> HWC float32 BGR in [0, 1] (:mod:`amsnet_basicsr.image_io`: gray replicated to 3
    channels, alpha dropped, 16-bit scaled by 1/65535, floats clipped); :class:`ImageError` names ``path``."""
    return image_io.to_float_bgr(image_io.decode(content, path))


def probe_image(path):
    """Cheap header check of an image file: (height, width, note) or raise :class:`ImageError` with the reason.

    PIL reads only the header; formats PIL does not know but OpenCV does (EXR, PFM, HDR) are decoded fully.
    """
    from PIL import Image, UnidentifiedImageError
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise ImageError(f'{path}: cannot be read ({error.strerror or error})') from error
    if size == 0:
        raise ImageError(f'{path}: empty file (0 bytes)')
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        if not cv2.haveImageReader(path):
            raise ImageError(f'{path}: not an image (unknown format)') from error
        with open(path, 'rb') as handle:
            decoded = decode_image(handle.read(), path)
        return decoded.shape[0], decoded.shape[1], None
    notes = []
    if mode in ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'F'):
        notes.append(f'grayscale ({mode}): replicated to RGB')
    if mode in ('RGBA', 'RGBa', 'LA', 'La', 'PA'):
        notes.append('alpha channel dropped')
    if mode.startswith('I;16') or mode == 'I':
        notes.append('16-bit: scaled by 1/65535')
    note = ', '.join(notes) or None
    return height, width, note


@DATASET_REGISTRY.register()
class NoisyImageDataset(SingleImageDataset):
    """Noisy images from a folder or a BasicSR LMDB, randomly cropped, flipped and rotated for training.

    Options (BasicSR conventions): ``dataroot_lq`` (folder or ``*.lmdb``), ``io_backend`` (``disk`` or ``lmdb``),
    ``meta_info_file`` (optional, folder mode), ``crop_size``, ``use_hflip``, ``use_rot``, and
    ``bad_images``: ``skip`` (default: unusable images are left out with a warning naming each file and the
    reason) or ``error`` (the first one stops the run). The file client is opened lazily in each worker.
    Returns ``{'lq': CHW float32 RGB in [0, 1], 'lq_path': str}``: there is no clean image anywhere on this path.

    The images are checked when the dataset is built, cheaply: folder images by their headers (PIL), LMDB
    images by the shapes in ``meta_info.txt``. Empty, non-image, undecodable files and images smaller than
    ``crop_size`` are unusable; gray, RGBA and 16-bit images are converted (:func:`decode_image`). Sizes need not
    be multiples of the PD strides (the scheme reflect-pads). No usable image at all is an error before the
    first iteration. A file whose header is fine but whose data is corrupt is found when it is read: skipped
    (another image is used) or an error naming it.
    """

    def __init__(self, opt):  # noqa: D107  (SingleImageDataset.__init__ is replaced: it cannot report bad input)
        self.opt = opt
        self.file_client = None
        self.io_backend_opt = dict(opt['io_backend'])
        self.mean = self.std = None
        self.lq_folder = opt.get('dataroot_lq')
        self.key = key = f'datasets.{opt.get("phase", "train")}'
        self.policy = opt.get('bad_images', 'skip')
        if self.policy not in BAD_IMAGE_POLICIES:
            raise OptionError(f'{key}.bad_images: {self.policy!r} is not one of {", ".join(BAD_IMAGE_POLICIES)}')
        self.crop_size = opt.get('crop_size')
        if isinstance(self.crop_size, bool) or not isinstance(self.crop_size, int) or self.crop_size < 1:
            raise OptionError(f'{key}.crop_size must be an integer >= 1, got {self.crop_size!r}')
        if self.lq_folder is None or not osp.exists(self.lq_folder):
            raise OptionError(f'{key}.dataroot_lq: {self.lq_folder} does not exist')
        backend = self.io_backend_opt.get('type')
        if backend == 'lmdb':
            self.io_backend_opt['db_paths'] = [self.lq_folder]
            self.io_backend_opt['client_keys'] = ['lq']
            candidates = self._scan_lmdb()
        elif backend == 'disk':
            candidates = self._scan_folder()
        else:
            raise OptionError(f'{key}.io_backend.type: {backend!r} is not one of disk, lmdb')
        self.paths, problems, notes = [], [], []
        for path, height, width, problem, note in candidates:
            if problem is None and (height < self.crop_size or width < self.crop_size):
                problem = f'image is {height}x{width}, smaller than crop_size {self.crop_size}'
            if problem is None:
                self.paths.append(path)
                if note:
                    notes.append(f'{path}: {note}')
            else:
                problems.append(f'{path}: {problem}')
        if problems and self.policy == 'error':
            raise ImageError(f'{key}: unusable image {problems[0]}'
                             + (f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''))
        if not self.paths:
            listing = '; '.join(problems[:5]) + (f'; ... ({len(problems)} in all)' if len(problems) > 5 else '')
            raise ImageError(f'{key}: no usable training image in {self.lq_folder}'
                             + (f': {listing}' if listing else ' (it is empty)'))
        logger = get_root_logger()
        for line in problems:
            logger.warning(f'Skipping unusable training image {line}')
        for line in notes[:20]:
            logger.info(f'Converting training image {line}')
        if len(notes) > 20:
            logger.info(f'... {len(notes) - 20} more images converted')
        self._bad_indices = set()

    # ------------------------------------------------------------------------------------------ scanning
    def _scan_folder(self):
        """(path, height, width, problem, note) for each file of the folder (or of ``meta_info_file``)."""
        if 'meta_info_file' in self.opt and self.opt['meta_info_file'] is not None:
            with open(self.opt['meta_info_file']) as handle:
                paths = [osp.join(self.lq_folder, line.strip().split(' ')[0]) for line in handle if line.strip()]
        else:
            if not osp.isdir(self.lq_folder):
                raise OptionError(f'{self.key}.dataroot_lq: {self.lq_folder} is not '
                                  'a folder (io_backend disk); use io_backend type lmdb for *.lmdb')
            paths = sorted(scandir(self.lq_folder, full_path=True))
        results = []
        for path in paths:
            if osp.basename(path).startswith('.'):  # .DS_Store, editor swap files
                continue
            try:
                height, width, note = probe_image(path)
                results.append((path, height, width, None, note))
            except ImageError as error:
                results.append((path, 0, 0, str(error).split(': ', 1)[-1], None))
        return results

    def _scan_lmdb(self):
        """(key, height, width, problem, note) from ``meta_info.txt`` lines ``<key>.png (h,w,c) <level>``."""
        meta = osp.join(self.lq_folder, 'meta_info.txt')
        for needed in (meta, osp.join(self.lq_folder, 'data.mdb')):
            if not osp.isfile(needed):
                raise OptionError(f'{self.key}.dataroot_lq: {needed} is missing (not a BasicSR LMDB made by '
                                  'basicsr.utils.lmdb_util.make_lmdb_from_imgs)')
        results = []
        with open(meta) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                match = _META_LINE.match(line.strip())
                if match is None:
                    raise ImageError(f'{meta}:{number}: expected "<key>.png (h,w,c) <level>", got {line.strip()!r}')
                key = osp.splitext(match['file'])[0]  # basicsr's split('.')[0] breaks keys containing dots
                channels = int(match['c'])
                note = {1: 'grayscale: replicated to RGB', 2: 'alpha channel dropped',
                        4: 'alpha channel dropped'}.get(channels)
                problem = None if channels in (1, 2, 3, 4) else f'{channels} channels (supported: 1, 2, 3, 4)'
                results.append((key, int(match['h']), int(match['w']), problem, note))
        return results

    # ------------------------------------------------------------------------------------------ reading
    def _read(self, index):
        path = self.paths[index]
        try:
            content = self.file_client.get(path, 'lq')
        except Exception as error:  # a missing LMDB key, an unreadable file
            raise ImageError(f'{path}: cannot be read ({type(error).__name__}: {error})') from error
        image = decode_image(content, path)
        height, width = image.shape[:2]
        if height < self.crop_size or width < self.crop_size:
            raise ImageError(f'{path}: image is {height}x{width}, smaller than crop_size {self.crop_size}')
        return path, image

    def __getitem__(self, index):
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        for attempt in range(len(self.paths)):
            candidate = (index + attempt) % len(self.paths)
            if candidate in self._bad_indices:
                continue
            try:
                path, image = self._read(candidate)
                break
            except ImageError as error:
                if self.policy == 'error':
                    raise
                self._bad_indices.add(candidate)
                get_root_logger().warning(f'Skipping unusable training image {error}')
        else:
            raise ImageError(f'{self.key}: no training image of {self.lq_folder} '
                             'could be decoded')
        crop = self.crop_size
        height, width = image.shape[:2]
        top, left = random.randint(0, height - crop), random.randint(0, width - crop)
        image = augment(image[top:top + crop, left:left + crop].copy(), self.opt.get('use_hflip', True),
                        self.opt.get('use_rot', True))
        return {'lq': img2tensor(image, bgr2rgb=True, float32=True), 'lq_path': path}

    def __len__(self):
        return len(self.paths)

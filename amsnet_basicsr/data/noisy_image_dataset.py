"""Noisy-only training data: the only images AMSNet ever trains on (SPEC §4)."""
import random

from basicsr.data.single_image_dataset import SingleImageDataset
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class NoisyImageDataset(SingleImageDataset):
    """Noisy images from a folder or a BasicSR LMDB, randomly cropped, flipped and rotated for training.

    Options (BasicSR conventions): ``dataroot_lq`` (folder or ``*.lmdb``), ``io_backend`` (``disk`` or ``lmdb``),
    ``meta_info_file`` (optional, folder mode), ``crop_size``, ``use_hflip``, ``use_rot``. The file client is
    opened lazily in each worker. Returns ``{'lq': CHW float32 RGB in [0, 1], 'lq_path': str}``: there is no
    clean image anywhere on this path.
    """

    def __getitem__(self, index):
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        path = self.paths[index]
        image = imfrombytes(self.file_client.get(path, 'lq'), float32=True)
        crop = self.opt['crop_size']
        height, width = image.shape[:2]
        if height < crop or width < crop:
            raise ValueError(f'{path}: image is {height}x{width}, smaller than crop_size {crop}')
        top, left = random.randint(0, height - crop), random.randint(0, width - crop)
        image = augment(image[top:top + crop, left:left + crop].copy(), self.opt.get('use_hflip', True),
                        self.opt.get('use_rot', True))
        return {'lq': img2tensor(image, bgr2rgb=True, float32=True), 'lq_path': path}

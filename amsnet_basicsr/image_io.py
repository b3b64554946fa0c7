"""Reading images: one decoder behind every reader of the package (training folders and LMDBs, paired test folders,
photos for ``amsnet-denoise``, SIDD crops). Errors are :class:`~amsnet_basicsr.errors.ImageError` naming the file."""
import cv2
import numpy as np

from .errors import ImageError

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0,
          np.dtype(np.float64): 1.0}


def decode(content, path):
    """Bytes of an image file -> the array as stored: (H, W, C), C in 1 (gray), 2 (gray + alpha), 3 (BGR) or
    4 (BGRA), sample type uint8, uint16, float32 or float64 (OpenCV's order and types, nothing converted)."""
    buffer = np.frombuffer(content, np.uint8) if content is not None else np.zeros(0, np.uint8)
    if buffer.size == 0:
        raise ImageError(f'{path}: empty file (0 bytes)')
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise ImageError(f'{path}: not a decodable image (corrupt, truncated or not an image file)')
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f'{path}: {image.shape[2]} channels; supported: 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA)')
    if image.dtype not in SCALES:
        raise ImageError(f'{path}: sample type {image.dtype} is not supported (8-bit, 16-bit or float images)')
    return image


def read(path):
    """An image file -> the array as stored (see :func:`decode`)."""
    try:
        with open(path, 'rb') as handle:
            content = handle.read()
    except OSError as error:
        raise ImageError(f'{path}: cannot be read ({error.strerror or error})') from error
    return decode(content, path)


def to_float_bgr(stored):
    """A stored array -> (H, W, 3) float32 BGR in [0, 1]: gray replicated, alpha dropped (it carries no noise),
    integers scaled by their range, floats clipped (NaN -> 0)."""
    channels = stored.shape[2]
    if channels <= 2:
        colour = np.repeat(stored[..., :1], 3, axis=2)
    else:
        colour = stored[..., :3]
    if colour.dtype.kind == 'f':
        return np.ascontiguousarray(np.clip(np.nan_to_num(colour.astype(np.float32)), 0.0, 1.0))
    return np.ascontiguousarray(colour.astype(np.float32) / SCALES[colour.dtype])


def read_rgb(path):
    """An image file -> (H, W, 3) float32 RGB in [0, 1] (any bit depth; gray replicated, alpha dropped)."""
    return np.ascontiguousarray(to_float_bgr(read(path))[..., ::-1])

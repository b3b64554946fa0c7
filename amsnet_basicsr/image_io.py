"""Image files: one decoder behind every reader of the package (training folders and LMDBs, paired test folders,
photos for ``amsnet-denoise``, SIDD crops); the one table of the file formats photos are written in (:data:`FORMATS`,
:func:`convert_for`); PNG sizes from the header alone (:func:`png_header_size`, for SIDD crops and teacher targets);
and the photo files of ``amsnet-denoise`` (:func:`find_images`, :func:`read_image`, :func:`split_image` /
:func:`join_image` between a stored array and the float RGB/gray the denoiser takes, :func:`write_image`).
Errors are :class:`~amsnet_basicsr.errors.ImageError` naming the file."""
import struct
from pathlib import Path
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np

from .errors import ImageError, SetupError
from .files import atomic_write

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0,
          np.dtype(np.float64): 1.0}

_DEPTHS_8, _DEPTHS_16, _DEPTHS_ANY = (np.dtype(np.uint8), ), (np.dtype(np.uint8), np.dtype(np.uint16)), tuple(SCALES)
# file extension -> the sample types its format stores (OpenCV's encoders), narrowest first
FORMATS = {'.png': _DEPTHS_16, '.tif': _DEPTHS_ANY, '.tiff': _DEPTHS_ANY, '.jpg': _DEPTHS_8, '.jpeg': _DEPTHS_8}
IMAGE_EXTENSIONS = tuple(FORMATS)
WITHOUT_ALPHA = ('.jpg', '.jpeg')


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


PNG_HEADER_BYTES = 29  # signature (8), IHDR length and type (8), width, height, bit depth, colour type (10), ...


def png_header_size(head: bytes, source: object) -> Tuple[int, int, int, int]:
    """(height, width, channels, bytes per sample) from the first :data:`PNG_HEADER_BYTES` bytes of a PNG, without
    decoding the image; :class:`~amsnet_basicsr.errors.ImageError` naming ``source`` when they are not a PNG's."""
    if len(head) < PNG_HEADER_BYTES or head[:8] != b'\x89PNG\r\n\x1a\n' or head[12:16] != b'IHDR':
        raise ImageError(f'{source} is not a PNG file')
    width, height, depth, color = struct.unpack('>IIBB', head[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color, 3)
    return height, width, channels, max(depth // 8, 1)


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


def convert_for(path, image):
    """A stored array (see :func:`decode`) converted to what the format of ``path`` (its extension) stores.

    A sample type the format stores is kept. Otherwise (OpenCV would silently write 16-bit as saturated 8-bit and
    floats as 0/1): 16-bit -> 8-bit divides by 257; floats are clipped to [0, 1] (NaN -> 0) and scaled to the
    format's widest integer type (PNG: 16-bit, JPEG: 8-bit); values are rounded. An extension that is not in
    :data:`FORMATS`, or an alpha channel for a format without one, is an :class:`ImageError` naming the file.
    """
    extension = Path(path).suffix.lower()
    if extension not in FORMATS:
        raise ImageError(f'{path}: cannot write {extension or "files without an extension"}; '
                         f'supported: {", ".join(IMAGE_EXTENSIONS)}')
    if extension in WITHOUT_ALPHA and image.ndim == 3 and image.shape[2] == 4:
        raise ImageError(f'{path}: {extension} cannot store the alpha channel (write .png or .tif)')
    depths = FORMATS[extension]
    if image.dtype in depths:
        return image
    target = depths[-1]
    if image.dtype.kind == 'f':
        image = np.clip(np.nan_to_num(image), 0.0, 1.0)
    return np.rint(image * (SCALES[target] / SCALES[image.dtype])).astype(target)


# ------------------------------------------------------------------------------------- photos (amsnet-denoise)
PathLike = Union[str, Path]


def find_images(input_path: PathLike, output_dir: PathLike) -> List[Tuple[Path, Path]]:
    """(file, path relative to the input root) for every image under ``input_path`` (a file, or a folder searched
    recursively for :data:`IMAGE_EXTENSIONS`, any case), outputs under ``output_dir`` excluded; :class:`SetupError`
    when ``input_path`` is neither a file nor a folder."""
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


def read_image(path: PathLike) -> np.ndarray:
    """(H, W, C) array as stored (:func:`read`): gray, BGR or BGRA; 8/16-bit or float. Gray + alpha is refused."""
    image = read(path)
    if image.shape[2] == 2:
        raise ImageError(f'{path}: gray + alpha images are not supported (expected gray, RGB or RGBA)')
    return image


def split_image(image: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Stored BGR(A)/gray array -> float RGB/gray (H, W, C) in [0, 1] and the alpha plane (or None)."""
    scale = SCALES[image.dtype]
    alpha = image[..., 3:] if image.shape[2] == 4 else None
    colour = image[..., :3][..., ::-1] if image.shape[2] >= 3 else image
    return colour.astype(np.float32) / scale, alpha


def join_image(colour: np.ndarray, alpha: Optional[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Float RGB/gray in [0, 1] -> stored BGR(A)/gray array of ``dtype`` (rounded, clipped)."""
    colour = np.clip(colour, 0.0, 1.0)
    if colour.shape[2] == 3:
        colour = colour[..., ::-1]
    if np.dtype(dtype).kind != 'f':
        colour = np.rint(colour * SCALES[np.dtype(dtype)])
    out = colour.astype(dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha], axis=2)
    return out[..., 0] if out.shape[2] == 1 else np.ascontiguousarray(out)


def write_image(path: Path, image: np.ndarray, force: bool) -> None:
    """Convert to what the format of ``path`` stores (:func:`convert_for`), encode, then write atomically
    (:func:`amsnet_basicsr.files.atomic_write`); refuse to replace an existing file unless ``force``. A file system
    error is an :class:`ImageError` naming the file."""
    path = Path(path)
    if path.exists() and not force:
        raise ImageError(f'{path}: exists (use --force to overwrite)')
    image = convert_for(path, image)
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

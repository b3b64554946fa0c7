"""Pack SIDD-Medium sRGB noisy images into 512x512 crops in a BasicSR LMDB.

The logic behind ``scripts/prepare_sidd.py``; importable for tests. Layout read (SIDD-Medium sRGB):

    SIDD_Medium_Srgb/Data/<scene>/<inst>_NOISY_SRGB_010.PNG   (+ _011; <inst>_GT_SRGB_01x.PNG beside them)

with ``<scene>`` like ``0001_001_S6_00100_00060_3200_L`` and ``<inst>`` its first four digits. Only the NOISY files
are opened unless ``with_gt`` is asked for: AMSNet is self-supervised and never trains on a clean image.

Crop keys are ``<scene>_<capture>_s<index>`` (e.g. ``0001_001_S6_00100_00060_3200_L_010_s0007``; no dots, as
BasicSR's ``paths_from_lmdb`` splits at the first dot); the optional GT LMDB uses the same keys. Values are PNG bytes
written by ``basicsr.utils.lmdb_util.LmdbMaker``; ``meta_info.txt`` lines are ``<key>.png (h,w,c) <level>``.

Atomicity: the LMDB is built in ``<output>.partial/<name>.lmdb`` with its meta file named ``meta_info.txt.partial``,
so a killed run leaves nothing that BasicSR can load; the meta file and the folder are renamed into place only once
every crop is committed. A rerun deletes a stale ``.partial`` folder and starts again.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from multiprocessing import get_context

import cv2

from .. import image_io
from ..errors import AMSNetError, DataError, ImageError, report
from ..output_folder import check_replaceable, remove_written

NOISY_PATTERN = re.compile(r'^(?P<inst>\d{4})_NOISY_SRGB_(?P<capture>\d{3})\.png$', re.IGNORECASE)
EXAMPLE_LAYOUT = ('SIDD_Medium_Srgb/Data/0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_010.PNG '
                  '(and 0001_GT_SRGB_010.PNG beside it)')
PARTIAL_SUFFIX = '.partial'
INFO = 'prepare_sidd.json'  # written into every LMDB this command completes: --force replaces only those


class LayoutError(DataError):
    """The input folder is not an unpacked SIDD-Medium sRGB tree; the message names what is missing."""


def crop_grid(size, crop_size, step):
    """Top-left offsets along one axis: 0, step, 2*step, ... and a last crop flush with the border.

    Every pixel is covered; the last two crops overlap more than the others when (size - crop_size) is not a
    multiple of ``step``. ``size == crop_size`` gives ``[0]``; ``size < crop_size`` raises ValueError.
    """
    if crop_size <= 0 or step <= 0:
        raise ValueError(f'crop_size and step must be positive, got {crop_size} and {step}')
    if size < crop_size:
        raise ValueError(f'image side {size} is smaller than crop size {crop_size}')
    offsets = list(range(0, size - crop_size + 1, step))
    if offsets[-1] != size - crop_size:
        offsets.append(size - crop_size)
    return offsets


def crop_boxes(height, width, crop_size, step):
    """(top, left) of every crop, row-major: the order of the crop indices in the keys."""
    return [(top, left) for top in crop_grid(height, crop_size, step) for left in crop_grid(width, crop_size, step)]


def find_data_root(root):
    """``root`` itself or ``root/Data``: the folder whose sub-folders are SIDD scenes."""
    if not osp.isdir(root):
        raise LayoutError(f'input folder {root} does not exist; expected the unpacked SIDD-Medium sRGB folder, '
                          f'e.g. {EXAMPLE_LAYOUT}')
    if osp.isdir(osp.join(root, 'Data')):
        return osp.join(root, 'Data')
    return root


def discover_sidd(root, with_gt=False):
    """List the NOISY images of a SIDD-Medium sRGB tree (and their GT paths when ``with_gt``).

    Returns a list of dicts ``{'scene', 'capture', 'noisy', 'gt', 'key_prefix'}`` sorted by scene and capture.
    In the default mode ``gt`` is None and no GT file is looked at (a missing or unreadable GT does not matter).
    Raises LayoutError naming the folder or file that is missing.
    """
    data_root = find_data_root(root)
    scenes = sorted(name for name in os.listdir(data_root) if osp.isdir(osp.join(data_root, name)))
    if not scenes:
        raise LayoutError(f'no scene folders in {data_root}; expected {EXAMPLE_LAYOUT}')
    items, empty = [], []
    for scene in scenes:
        folder = osp.join(data_root, scene)
        found = []
        for name in sorted(os.listdir(folder)):
            match = NOISY_PATTERN.match(name)
            if match is None or not osp.isfile(osp.join(folder, name)):
                continue
            gt_path = None
            if with_gt:
                gt_name = f"{match['inst']}_GT_SRGB_{match['capture']}{osp.splitext(name)[1]}"
                gt_path = osp.join(folder, gt_name)
                if not osp.isfile(gt_path):
                    raise LayoutError(f'--with-gt: GT image {gt_path} is missing (the pair of {name})')
            found.append({
                'scene': scene,
                'capture': match['capture'],
                'noisy': osp.join(folder, name),
                'gt': gt_path,
                'key_prefix': f"{scene}_{match['capture']}",
            })
        if not found:
            empty.append(scene)
        items.extend(found)
    if empty:
        shown = ', '.join(osp.join(data_root, s) for s in empty[:5]) + (' ...' if len(empty) > 5 else '')
        raise LayoutError(f'{len(empty)} scene folder(s) hold no <inst>_NOISY_SRGB_<capture>.PNG file: {shown}; '
                          f'expected {EXAMPLE_LAYOUT}')
    for item in items:
        if '.' in item['key_prefix'] or not item['key_prefix'].isascii():
            raise LayoutError(f'scene folder name {item["scene"]!r} contains a dot or non-ASCII characters, '
                              'which cannot be an LMDB key')
    return items


def png_size(path):
    """(height, width, channels, bytes per sample) from a PNG file's header, without decoding the image
    (:func:`amsnet_basicsr.image_io.png_header_size`); :class:`LayoutError` when it is not a PNG."""
    with open(path, 'rb') as f:
        head = f.read(image_io.PNG_HEADER_BYTES)
    try:
        return image_io.png_header_size(head, path)
    except ImageError as error:
        raise LayoutError(str(error)) from error


def plan_crops(items, crop_size, step):
    """Attach the crop boxes to every item (from PNG headers) and return the total number of crops and bytes."""
    total_crops, total_bytes = 0, 0
    for item in items:
        height, width, channels, sample = png_size(item['noisy'])
        try:
            item['boxes'] = crop_boxes(height, width, crop_size, step)
        except ValueError as error:
            raise LayoutError(f"{item['noisy']}: {error} (use a smaller --crop-size)") from error
        item['shape'] = (height, width, channels)
        total_crops += len(item['boxes'])
        total_bytes += len(item['boxes']) * crop_size * crop_size * channels * sample
    return total_crops, total_bytes


def crop_keys(item):
    """The LMDB keys of an item's crops, in box order."""
    return [f"{item['key_prefix']}_s{index:04d}" for index in range(len(item['boxes']))]


def _encode_crops(image, item, crop_size, compress_level, path):
    if image.shape[:2] != item['shape'][:2]:
        raise ValueError(f"{path}: decoded size {image.shape[:2]} differs from its header {item['shape'][:2]}")
    out = []
    for key, (top, left) in zip(crop_keys(item), item['boxes']):
        crop = image[top:top + crop_size, left:left + crop_size]
        ok, data = cv2.imencode('.png', crop, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
        if not ok:
            raise OSError(f'cannot PNG-encode crop {key} of {path}')
        shape = crop.shape if crop.ndim == 3 else crop.shape + (1, )
        out.append((key, data.tobytes(), shape))
    return out


def process_item(args):
    """Worker: read one NOISY image (and its GT when asked), crop it, PNG-encode the crops.

    Returns ``(noisy_crops, gt_crops)``, lists of ``(key, png_bytes, (h, w, c))``; ``gt_crops`` is None unless the
    item carries a GT path. Pixels are kept exactly (PNG is lossless; OpenCV's BGR order is undone on decode).
    """
    item, crop_size, compress_level = args
    noisy = _encode_crops(image_io.read(item['noisy']), item, crop_size, compress_level, item['noisy'])
    gt = None
    if item.get('gt'):
        gt = _encode_crops(image_io.read(item['gt']), item, crop_size, compress_level, item['gt'])
    return noisy, gt


def default_gt_output(output):
    """GT LMDB path next to the noisy one: ``..._noisy_...lmdb`` -> ``..._gt_...lmdb``, else ``<stem>_gt.lmdb``."""
    folder, name = osp.split(osp.normpath(output))
    stem = name[:-len('.lmdb')]
    if 'noisy' in stem:
        return osp.join(folder, stem.replace('noisy', 'gt') + '.lmdb')
    return osp.join(folder, stem + '_gt.lmdb')


class _AtomicLmdb:
    """A basicsr LmdbMaker writing into ``<output>.partial/`` and moved to ``output`` by :meth:`commit`."""

    def __init__(self, output, map_size, compress_level):
        from basicsr.utils.lmdb_util import LmdbMaker
        self.output = osp.normpath(output)
        self.partial_root = self.output + PARTIAL_SUFFIX
        if osp.exists(self.partial_root):
            print(f'Removing the unfinished build {self.partial_root} of an interrupted run.', flush=True)
            remove_written(self.partial_root, osp.join(osp.basename(self.output), 'meta_info.txt.partial'),
                           'prepare_sidd.py')
        os.makedirs(self.partial_root)
        self.partial = osp.join(self.partial_root, osp.basename(self.output))
        self.maker = LmdbMaker(self.partial, map_size=map_size, compress_level=compress_level)
        # LmdbMaker writes meta_info.txt while it goes: rename it so that an interrupted build has no meta file,
        # which BasicSR's paths_from_lmdb needs -- a half-written LMDB can never be loaded for training.
        self.maker.txt_file.close()
        os.replace(osp.join(self.partial, 'meta_info.txt'), osp.join(self.partial, 'meta_info.txt.partial'))
        self.maker.txt_file = open(osp.join(self.partial, 'meta_info.txt.partial'), 'a')
        self.count = 0

    def put(self, key, data, shape):
        self.maker.put(data, key, shape)
        self.count += 1

    def abort(self):
        """Close without committing the open transaction; the ``.partial`` folder stays (a rerun removes it)."""
        try:
            self.maker.txn.abort()
            self.maker.env.close()
        finally:
            self.maker.txt_file.close()

    def commit(self, info):
        self.maker.close()
        with open(osp.join(self.partial, INFO), 'w') as f:
            json.dump(dict(info, crops=self.count), f, indent=2)
        os.replace(osp.join(self.partial, 'meta_info.txt.partial'), osp.join(self.partial, 'meta_info.txt'))
        if osp.exists(self.output):  # --force: the old LMDB stays usable until the new one is complete
            remove_written(self.output, INFO, 'prepare_sidd.py')
        os.replace(self.partial, self.output)
        os.rmdir(self.partial_root)


def prepare_sidd(input_root, output, crop_size=512, step=384, workers=4, with_gt=False, gt_output=None,
                 compress_level=1, force=False, max_images=None, progress=True):
    """Crop SIDD-Medium NOISY images (and GT with ``with_gt``) into BasicSR LMDBs; return a summary dict.

    Raises LayoutError for a wrong input tree and FileExistsError when an output exists and ``force`` is False.
    """
    output = osp.normpath(output)
    outputs = [output]
    if with_gt:
        gt_output = osp.normpath(gt_output or default_gt_output(output))
        if gt_output == output:
            raise ValueError(f'--gt-output must differ from the noisy output {output}')
        outputs.append(gt_output)
    for path in outputs:
        if not path.endswith('.lmdb'):
            raise ValueError(f'output {path} must end with .lmdb (BasicSR LMDB convention)')
        check_replaceable(path, marker=INFO, command='prepare_sidd.py', force=force, error=FileExistsError)

    items = discover_sidd(input_root, with_gt=with_gt)
    if max_images is not None:
        items = items[:max_images]
    total_crops, total_bytes = plan_crops(items, crop_size, step)
    # PNG of noisy data is about the raw size; x1.5 + 64 MiB covers PNG and LMDB page overhead. (LmdbMaker's own
    # estimate from one image can overflow: always pass map_size, BASICSR_NOTES.md.)
    map_size = int(total_bytes * 1.5) + (64 << 20)
    print(f'{len(items)} noisy images in {find_data_root(input_root)} -> {total_crops} crops of '
          f'{crop_size}x{crop_size} '
          f'(step {step}) into {output}' + (f' and GT into {gt_output}' if with_gt else ''), flush=True)

    for path in outputs:
        os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    writers = [_AtomicLmdb(path, map_size, compress_level) for path in outputs]
    tasks = [(item, crop_size, compress_level) for item in items]
    start = time.time()
    pool = None
    if workers and workers > 1:
        pool = get_context('fork' if sys.platform.startswith('linux') else 'spawn').Pool(workers)
        results = pool.imap(process_item, tasks, chunksize=1)
    else:
        results = map(process_item, tasks)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(items), unit='image', desc='prepare_sidd')
    try:
        for noisy, gt in results:
            for crop in noisy:
                writers[0].put(*crop)
            if with_gt:
                for crop in gt:
                    writers[1].put(*crop)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(crops=writers[0].count)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    if writers[0].count != total_crops:
        raise RuntimeError(f'wrote {writers[0].count} crops, planned {total_crops}')
    info = dict(source=osp.abspath(find_data_root(input_root)), images=len(items), crop_size=crop_size, step=step,
                compress_level=compress_level)
    for writer, kind in zip(writers, ['noisy', 'gt']):
        writer.commit(dict(info, content=kind))
    seconds = time.time() - start
    print(f'Done: {total_crops} crops in {seconds:.1f} s -> {", ".join(outputs)}', flush=True)
    return dict(images=len(items), crops=total_crops, outputs=outputs, seconds=seconds)


CLI_DOC = """Crop SIDD-Medium sRGB NOISY images into 512x512 sub-images packed in a BasicSR LMDB (AMSNet training data).

    python scripts/prepare_sidd.py --input datasets/SIDD/SIDD_Medium_Srgb \
        --output datasets/SIDD/SIDD_Medium_Srgb_noisy_512.lmdb --workers 8

Only the NOISY images are read (AMSNet is self-supervised); ``--with-gt`` also packs the GT crops under the same keys
into a second LMDB (default: the output name with ``noisy`` -> ``gt``) for paired validation of your own. The build
happens in ``<output>.partial`` and is moved into place at the end: an interrupted run leaves nothing that trains, and
simply rerunning starts over. An existing output is kept unless ``--force`` is given.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, help='SIDD_Medium_Srgb folder (or its Data/ sub-folder)')
    parser.add_argument('--output', default='datasets/SIDD/SIDD_Medium_Srgb_noisy_512.lmdb',
                        help='LMDB folder to create (must end with .lmdb)')
    parser.add_argument('--crop-size', type=int, default=512)
    parser.add_argument('--step', type=int, default=384, help='stride between crops; the last crop is flush')
    parser.add_argument('--workers', type=int, default=4, help='processes reading/cropping images (<=1: none)')
    parser.add_argument('--compress-level', type=int, default=1, help='PNG compression level 0-9 in the LMDB')
    parser.add_argument('--with-gt', action='store_true', help='also pack GT crops (same keys) into --gt-output')
    parser.add_argument('--gt-output', default=None, help='GT LMDB (default: output name with noisy -> gt)')
    parser.add_argument('--force', action='store_true', help='replace existing output LMDBs')
    parser.add_argument('--max-images', type=int, default=None, help='only the first N images (quick trials)')
    args = parser.parse_args(argv)
    try:
        prepare_sidd(args.input, args.output, crop_size=args.crop_size, step=args.step, workers=args.workers,
                     with_gt=args.with_gt, gt_output=args.gt_output, compress_level=args.compress_level,
                     force=args.force, max_images=args.max_images)
    except (AMSNetError, LayoutError, OSError, ValueError) as error:  # FileExistsError is an OSError
        return report('prepare_sidd.py', error)
    return 0

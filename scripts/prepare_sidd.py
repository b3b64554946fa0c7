"""Crop SIDD-Medium sRGB NOISY images into 512x512 sub-images packed in a BasicSR LMDB (AMSNet training data).

    python scripts/prepare_sidd.py --input datasets/SIDD/SIDD_Medium_Srgb \
        --output datasets/SIDD/SIDD_Medium_Srgb_noisy_512.lmdb --workers 8

Only the NOISY images are read (AMSNet is self-supervised); ``--with-gt`` also packs the GT crops under the same keys
into a second LMDB (default: the output name with ``noisy`` -> ``gt``) for paired validation of your own. The build
happens in ``<output>.partial`` and is moved into place at the end: an interrupted run leaves nothing that trains, and
simply rerunning starts over. An existing output is kept unless ``--force`` is given.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))

from amsnet_basicsr.data.sidd_prepare import LayoutError, prepare_sidd  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    except (LayoutError, OSError, ValueError) as error:  # FileExistsError is an OSError
        print(f'prepare_sidd.py: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

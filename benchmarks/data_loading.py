#!/usr/bin/env python
"""Training-data throughput: random crops per second from the LMDB of 512x512 crops vs from the full-size PNG folder.

    python benchmarks/data_loading.py                       # synthetic SIDD-sized noisy PNGs, packed here
    python benchmarks/data_loading.py --folder datasets/SIDD/noisy_png \\
        --lmdb datasets/SIDD/SIDD_Medium_Srgb_noisy_512.lmdb

Both go through AMSNet's training dataset (``NoisyImageDataset``: decode, random crop, flips/rot90, to tensor) and a
torch DataLoader with 1 and N worker processes. The PNG folder decodes a whole ~12 MP image per crop; the LMDB
decodes one 512x512 crop. Numbers depend on the machine and on what else runs on it.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr.data.sidd_prepare import prepare_sidd
from amsnet_basicsr.errors import run_command

from basicsr.data import build_dataset


def make_synthetic(root, count, height, width):
    """``count`` noisy 8-bit PNGs of height x width (smooth colours + strong noise: compresses like real noisy
    photos), flat in ``root/png`` and linked into a SIDD-Medium tree ``root/SIDD_Medium_Srgb/Data``."""
    rng = np.random.default_rng(0)
    flat = osp.join(root, 'png')
    os.makedirs(flat)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    for index in range(count):
        base = np.stack([0.5 + 0.3 * np.sin(3 * xx + 2 * yy + p) for p in rng.uniform(0, 6.3, 3)], -1) * 255
        image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        name = f'{index + 1:04d}_NOISY_SRGB_010.PNG'
        cv2.imwrite(osp.join(flat, name), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        scene = osp.join(root, 'SIDD_Medium_Srgb', 'Data', f'{index + 1:04d}_001_S6_00100_00060_3200_L')
        os.makedirs(scene)
        os.symlink(osp.join(flat, name), osp.join(scene, name))
    return flat, osp.join(root, 'SIDD_Medium_Srgb')


def crops_per_second(dataset_opt, workers, batches, batch_size):
    """Steady-state crops/s of a DataLoader over the dataset (the first batch, with worker start-up, excluded)."""
    dataset = build_dataset(dict(dataset_opt))
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=(batches + 1) * batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         multiprocessing_context='fork' if workers else None)
    iterator = iter(loader)
    next(iterator)
    start, seen = time.perf_counter(), 0
    for batch in iterator:
        seen += batch['lq'].shape[0]
    return seen / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--folder', help='folder of full-size noisy PNGs (default: synthetic)')
    parser.add_argument('--lmdb', help='LMDB made by scripts/prepare_sidd.py (default: packed from the folder)')
    parser.add_argument('--images', type=int, default=4, help='synthetic images')
    parser.add_argument('--image-size', default='3000x4000', help='synthetic image HxW (SIDD: about 3000x4000 up)')
    parser.add_argument('--crop-size', type=int, default=160, help='training crop (paper: 160)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--batches', type=int, default=20, help='timed batches per configuration')
    parser.add_argument('--workers', default=f'1,{os.cpu_count()}', help='comma-separated DataLoader worker counts')
    parser.add_argument('--workdir', help='where synthetic data go (default: a temporary folder)')
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(',')]

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder, lmdb_path = args.folder, args.lmdb
        if folder is None:
            height, width = (int(v) for v in args.image_size.lower().split('x'))
            start = time.perf_counter()
            folder, sidd_root = make_synthetic(tmp, args.images, height, width)
            print(f'synthetic: {args.images} noisy PNGs of {height}x{width} in {time.perf_counter() - start:.1f} s')
            if lmdb_path is None:
                lmdb_path = osp.join(tmp, 'noisy_512.lmdb')
                prepare_sidd(sidd_root, lmdb_path, workers=max(workers), progress=False)
        elif lmdb_path is None:
            parser.error('--folder needs --lmdb (pack it with scripts/prepare_sidd.py)')
        common = dict(name='bench', type='NoisyImageDataset', phase='train', crop_size=args.crop_size,
                      use_hflip=True, use_rot=True)
        sources = {'PNG folder': dict(common, dataroot_lq=folder, io_backend={'type': 'disk'}),
                   'LMDB 512 crops': dict(common, dataroot_lq=lmdb_path, io_backend={'type': 'lmdb'})}
        print(f'{os.cpu_count()} CPUs; crop {args.crop_size}, batch {args.batch_size}, {args.batches} timed batches')
        print(f'{"source":<16} {"workers":>7} {"crops/s":>9}')
        results = {}
        for label, opt in sources.items():
            for count in workers:
                rate = crops_per_second(opt, count, args.batches, args.batch_size)
                results[label, count] = rate
                print(f'{label:<16} {count:>7} {rate:>9.1f}', flush=True)
        for count in workers:
            print(f'LMDB / PNG speed-up with {count} worker(s): '
                  f'{results["LMDB 512 crops", count] / results["PNG folder", count]:.1f}x')
    return results


if __name__ == '__main__':
    sys.exit(run_command('data_loading.py', main))

#!/usr/bin/env python
"""Data-shift bench: a demo run's settings, judged on photos through other camera pipelines.

    python -m amsnet_basicsr.demo --seeds 3 --out results/amsnet_demo                # the settings (tuning variant)
    python benchmarks/data_shift.py --demo results/amsnet_demo/seed_{0,1,2} --out results/data_shift
    python benchmarks/data_shift.py --demo results/amsnet_demo/seed_0 --train-on test-photos other-photos \
        --out results/data_shift_train
    python benchmarks/data_shift.py --demo results/amsnet_demo/seed_0 --whole-photos --variants 6 7 8 \
        --out results/data_shift_whole

Every setting comes from one variant, the demo's own (photos enlarged 2x, bilinear demosaic): the models that
``amsnet-train-folder`` trained on the demo's noisy photos (the demo's ``model/`` folder: the chosen B checkpoint and
its distilled student, ``denoise.yml``); OpenCV NLM's and BM3D's factors on each image's noise estimate
(:mod:`amsnet_basicsr.baselines`), tuned on that variant's validation block by the demo (``results.json``);
``amsnet-denoise --adapt 300`` (validated on the demo's validation photo). Nothing is tuned again. They are evaluated
on the held-apart test photos (:data:`amsnet_basicsr.demo_data.TEST_IMAGES`, the demo's seed) through every variant
of :data:`VARIANTS` -- native sharpness, an edge-aware demosaic, JPEG compression, an ISP sharpening step (which
lengthens the noise correlation), each photo from a camera with its own white balance and colour matrix, a phone's
in-camera processing (noise reduction, sharpening, JPEG; its noise correlated out to 4-6 px as real phone photos'
is, :data:`IN_CAMERA`) -- and on photos of another source (:data:`OTHER_PHOTOS`: none of them was trained or tuned
on, nor is it a view of such a scene). ``--train-on`` adds what a user of ``amsnet-train-folder`` gets, its default
recipe trained per variant on noisy photos only: ``test-photos``, the photos to be denoised themselves (the
command's protocol), and ``other-photos``, the demo's training photos through the variant's camera (a model trained
once per camera).

Every AMSNet row is the product's inference object, :class:`amsnet_basicsr.inference.AMSNetDenoiser`, built with
``from_options`` from the options ``amsnet-denoise`` reads (``denoise.yml`` for the students; the chosen checkpoint
through :func:`amsnet_basicsr.recipes.inference_options` for B and B-E), tiles included; ``--adapt`` is
:func:`amsnet_basicsr.models.adaptation.adapted`, as ``amsnet-denoise --adapt`` runs it. What is scored: by default
the demo's 256x256 blocks (``--block``, ``--limit`` per photo), every method on the same blocks; with
``--whole-photos`` every method, the filters included, denoises the whole photos and is scored on them, every
method on the same pixels: the soft variants' photos are 1024 px on a side where the photo allows (astronaut
1024 x 1024, chelsea 902 x 600), wider than the student's 768-px tile, so tiling is part of what is judged; the
native-sharpness photos are the bundled files' own size, at most 512 px (one tile).

Columns per method: PSNR / SSIM (BasicSR, 8-bit RGB; the mean over the scored images, and per photo with
``--whole-photos``), the colour cast (largest absolute per-channel mean error of an image) and the signed
per-channel mean error, the low-frequency error (RMS of the error after a sigma = 4 px Gaussian blur; the noisy
input's is the reference), all in grey levels, seconds per scored image and megapixels per second of inference,
the tiles the AMSNet rows ran (:meth:`~amsnet_basicsr.inference.AMSNetDenoiser.tile_count`) and, for the
``--train-on`` rows, the training run's wall and CPU seconds. Each variant also gets the noise of its test photos:
the autocorrelation of noisy - clean at :data:`LAGS` (:func:`noise_autocorrelation`) and its standard deviation.
Several ``--demo`` folders (seeds) give the mean and sample standard deviation. The demo has no P stage, so there is
no P-E row. Measured tables: ``benchmarks/results/data_shift.md``.

The camera pipelines also serve the scripts that sample photos per pipeline (``psd_scale.py``, ``noise_mean.py``):
:func:`pipeline_photos`, :func:`tiles_of`, :func:`sample_arguments`, :func:`command_line`, :func:`write_page`.
"""
import argparse
import json
import os
import os.path as osp
import re
import resource
import sys
import time
from functools import partial

import cv2
import numpy as np
import torch

from amsnet_basicsr import camera_noise, demo_data
from amsnet_basicsr.errors import OptionError, SetupError, run_command

# The in-camera processing of a phone, after its (bilinear) demosaic: noise reduction, a Gaussian blur of the luma
# (sigma in px) and, wider, of the chroma (YCrCb), then unsharp masking (sigma 1 px, this amount), 8-bit output and
# JPEG at this quality. Matched to a camera, not tuned for any denoiser: on the demo's validation photo (coffee,
# enlarged 2x, seed 0), of a coarse grid (luma sigma 0-1.3, chroma sigma 0-6, amount 0-1, quality 85) and a finer one
# (luma 0.4-0.7, chroma 0.75-1.5, amount 0.2-0.5, quality 80 / 85) these came closest to REAL_NOISE_AUTOCORRELATION
# (RMS difference 0.018; measured 0.73 / 0.42 / 0.26 / 0.19 / 0.11).
IN_CAMERA = dict(luma_sigma=0.5, chroma_sigma=1.0, sharpen_amount=0.2, jpeg_quality=85)
# Noise autocorrelation of real in-camera-processed photos at lags 1, 2, 3, 4 and 6 px, measured as noisy minus
# reference on real camera photos with references (a private check of the project); what IN_CAMERA matches.
REAL_NOISE_AUTOCORRELATION = {1: 0.72, 2: 0.43, 3: 0.28, 4: 0.19, 6: 0.08}
LAGS = tuple(REAL_NOISE_AUTOCORRELATION)
# Photos of another source than the demo's (its training, validation and test photos, demo_data), from what is
# installed (no download): scikit-image's grey sample photos of 512 x 512 px, the cameraman and three textures (its
# other images are microscopy, astronomy, synthetic or smaller), given a colour each (RGB multipliers: grey, a brick
# red, a grass green, a sand colour; made up) so that the camera's white balance and Bayer mosaic see coloured scenes.
# At 512 px each is one student tile (recipes.STUDENT_TILE, 768): no other-source photo is larger at native sharpness.
# motorcycle_right (741 px, colour) is left out: the other view of the stereo pair whose left view (motorcycle_left)
# the demo trains on, nearly the same scene.
OTHER_PHOTOS = {'camera': (1.0, 1.0, 1.0), 'brick': (0.95, 0.62, 0.5), 'grass': (0.62, 0.9, 0.45),
                'gravel': (0.92, 0.84, 0.68)}
PHOTO_SETS = {'demo': demo_data.TEST_IMAGES, 'other': tuple(OTHER_PHOTOS)}
# every photo is reduced to at most this many px, then enlarged: the demo's (RECIPES['full']['max_eval_side'])
MAX_SIDE = 512

PIPELINE = dict(photos='demo', demosaic='bilinear', luma_sigma=0.0, chroma_sigma=0.0, sharpen_amount=0.0,
                jpeg_quality=None, random_camera=False)  # the demo's camera; a variant changes some of it
VARIANTS = {  # name: how the test photos go through the camera (keywords of PIPELINE, read by variant_photos)
    'soft, bilinear (the demo: tuning variant)': dict(enlarge=2),
    'native sharpness, bilinear': dict(enlarge=1),
    'soft, edge-aware demosaic': dict(enlarge=2, demosaic='opencv_ea'),
    'soft, JPEG quality 90': dict(enlarge=2, jpeg_quality=90),
    'soft, ISP sharpening': dict(enlarge=2, sharpen_amount=0.6),
    'soft, random white balance and colour matrix': dict(enlarge=2, random_camera=True),
    'soft, in-camera NR + sharpening + JPEG 85': dict(enlarge=2, **IN_CAMERA),
    'native sharpness, in-camera NR + sharpening + JPEG 85': dict(enlarge=1, **IN_CAMERA),
    'other photos, native sharpness': dict(enlarge=1, photos='other'),
}
ENSEMBLE_STUDENT = 'AMSNet-D student + self-ensemble (8 passes)'
ADAPT_STEPS, ADAPT_LR = 300, 1e-3  # amsnet-denoise --adapt, chosen on the validation photo (docs/demo.md)


def sharpen(image, amount):
    """Unsharp masking (Gaussian sigma 1 px), as a phone ISP applies it after demosaicking."""
    return np.clip(image + amount * (image - cv2.GaussianBlur(image, (0, 0), 1.0)), 0, 1).astype(np.float32)


def noise_reduction(image, *, luma_sigma, chroma_sigma):
    """A phone ISP's noise reduction: Gaussian blurs of the luma and, wider, of the chroma (YCrCb) of float RGB.

    A linear filter, so the same step on the clean image keeps noisy - clean the processed noise; it spreads the
    noise over the blur's footprint, which is what lengthens a real photo's noise correlation past the demosaic's
    1-2 px (the chroma most: cameras smooth colour noise hardest, as it is the most visible)."""
    ycc = cv2.cvtColor(np.asarray(image, np.float32), cv2.COLOR_RGB2YCrCb)
    if luma_sigma:
        ycc[..., 0] = cv2.GaussianBlur(ycc[..., 0], (0, 0), luma_sigma)
    if chroma_sigma:
        ycc[..., 1:] = cv2.GaussianBlur(ycc[..., 1:], (0, 0), chroma_sigma)
    return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 0, 1)


def jpeg(image, quality):
    """The 8-bit RGB image through a JPEG encode/decode at ``quality``, back to float RGB."""
    ok, data = cv2.imencode('.jpg', np.rint(image[..., ::-1] * 255).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def source_photo(name, *, max_side, enlarge):
    """The clean uint8 RGB photo ``name`` before the camera: a demo photo (:func:`demo_data.photo`) or one of
    :data:`OTHER_PHOTOS` given its colour, reduced to ``max_side`` and enlarged ``enlarge`` times."""
    image = demo_data.photo(name, max_side=max_side, enlarge=enlarge)
    if name in OTHER_PHOTOS:
        image = np.rint(image * np.asarray(OTHER_PHOTOS[name])).astype(np.uint8)
    return image


def variant_photos(variant, *, seed, names=None, max_side=MAX_SIDE):
    """[(name, noisy, clean)] the variant's test photos (or the photos ``names``) through its camera pipeline, as
    8-bit images.

    With ``random_camera`` each photo gets its own white balance and colour matrix
    (:func:`camera_noise.random_camera`, drawn from its own ``(seed, photo)`` stream), as photos from several phones.
    The in-camera steps (:func:`noise_reduction`, then :func:`sharpen`) work on the camera's unquantised values, as an
    ISP's do, and round to 8 bits once at the end; ISP sharpening alone works on the 8-bit camera output (as it
    always did, so its numbers stay comparable). JPEG compresses the noisy image only: the reference is what the
    camera would output for a noise-free exposure."""
    pipeline = {**PIPELINE, **VARIANTS[variant]}
    in_camera = bool(pipeline['luma_sigma'] or pipeline['chroma_sigma'])
    photos = []
    for name in names or PHOTO_SETS[pipeline['photos']]:
        camera = dict(demosaic=pipeline['demosaic'], quantize=not in_camera)
        if pipeline['random_camera']:
            camera.update(camera_noise.random_camera(demo_data.noise_rng(seed, f'camera of {name}')))
        noisy, clean = camera_noise.camera_noise_pair(
            source_photo(name, max_side=max_side, enlarge=pipeline['enlarge']), demo_data.noise_rng(seed, name),
            **camera)
        if in_camera:
            noisy, clean = (noise_reduction(image, luma_sigma=pipeline['luma_sigma'],
                                            chroma_sigma=pipeline['chroma_sigma']) for image in (noisy, clean))
        if pipeline['sharpen_amount']:
            noisy, clean = (sharpen(image, pipeline['sharpen_amount']) for image in (noisy, clean))
        if in_camera or pipeline['sharpen_amount']:
            noisy, clean = (np.round(image * 255) / 255 for image in (noisy, clean))  # the camera's 8-bit output
        if pipeline['jpeg_quality']:
            noisy = jpeg(noisy, pipeline['jpeg_quality'])
        photos.append((name, noisy.astype(np.float32), clean.astype(np.float32)))
    return photos


def pipeline_photos(indices, *, names, seed=0):
    """(variant, photo name, noisy, clean) for the photos ``names`` (None: each variant's own test photos) through each
    pipeline of ``indices`` (positions in :data:`VARIANTS`), as :func:`variant_photos` makes them; for the scripts
    that sample photos per pipeline."""
    variants = list(VARIANTS)
    for index in indices:
        for photo, noisy, clean in variant_photos(variants[index], seed=seed, names=names):
            yield variants[index], photo, noisy, clean


def tiles_of(image, *, tile):
    """The non-overlapping ``tile``-px tiles of ``image``, row by row from its top-left corner (``amsnet-train-folder``
    centres its grid; the noise measured on either is the same photo's)."""
    height, width = image.shape[:2]
    return [image[top:top + tile, left:left + tile] for top in range(0, height - tile + 1, tile)
            for left in range(0, width - tile + 1, tile)]


def variant_blocks(variant, *, seed, block, limit, photos=None):
    """[(key, noisy, clean)] test blocks (the demo's: ``limit`` per photo) of :func:`variant_photos`."""
    blocks = []
    for name, noisy, clean in photos or variant_photos(variant, seed=seed):
        size = min(block, *noisy.shape[:2])
        for top, left in demo_data.block_corners(*noisy.shape[:2], size=size, limit=limit):
            window = np.s_[top:top + size, left:left + size]
            blocks.append((f'{name}_{top:04d}_{left:04d}', noisy[window], clean[window]))
    return blocks


def noise_autocorrelation(noisy, clean, *, lags=LAGS):
    """The spatial autocorrelation of the noise ``noisy - clean`` ((H, W, C) float) at each of ``lags`` (px):
    :func:`camera_noise.noise_correlation`, the Pearson correlation of the noise with itself shifted along either
    axis, horizontal and vertical shifts and the channels pooled (each weighted by its noise energy). It says how far
    the camera spread the noise, i.e. which PD stride breaks it (paper Sec. 3.2)."""
    correlation = camera_noise.noise_correlation(np.asarray(noisy, np.float64) - clean, max_distance=max(lags))
    return np.array([correlation[lag - 1] for lag in lags])


def noise_statistics(photos, *, lags=LAGS):
    """The noise of (name, noisy, clean) ``photos``: its autocorrelation at ``lags`` (mean over the photos) and its
    standard deviation in grey levels (RMS over the photos' pixels)."""
    correlations = [noise_autocorrelation(noisy, clean, lags=lags) for _, noisy, clean in photos]
    variance = np.mean([np.var((noisy.astype(np.float64) - clean) * 255) for _, noisy, clean in photos])
    return dict(lags=list(lags), autocorrelation=[float(value) for value in np.mean(correlations, axis=0)],
                std=float(np.sqrt(variance)))


def noise_line(noise):
    """One line: the noise's autocorrelation per lag and its standard deviation."""
    return (f'noise (noisy - clean) autocorrelation {" / ".join(f"{value:.2f}" for value in noise["autocorrelation"])} '
            f'at {" / ".join(map(str, noise["lags"]))} px, std {noise["std"]:.1f} grey levels')


def errors(output, clean):
    """(colour cast, low-frequency error, per-channel mean error R, G, B) of uint8 BGR ``output`` against uint8 BGR
    ``clean``, in grey levels: the cast is the largest absolute per-channel mean error."""
    error = output.astype(np.float64) - clean.astype(np.float64)
    mean_rgb = error.reshape(-1, 3).mean(0)[::-1]
    low = cv2.GaussianBlur(error, (0, 0), 4.0)
    return (float(np.abs(mean_rgb).max()), float(np.sqrt((low ** 2).mean())), *map(float, mean_rgb))


def load_demo(folder):
    """A demo run's models and tuned filter parameters (:class:`SetupError` naming what is missing). Its ``model/``
    folder is an ``amsnet-train-folder`` output: ``train_folder.yml`` with the checkpoint it chose (named in the
    demo's ``results.json``) is the B-E teacher, ``denoise.yml`` (with ``model.pth``) the student. The models are
    (options, checkpoint) for :meth:`AMSNetDenoiser.from_options`: the teacher's options are
    :func:`recipes.inference_options` of its training options, as the demo builds it; the student's are the path of
    ``denoise.yml``, which ``amsnet-denoise -opt`` reads."""
    from amsnet_basicsr.networks import load_options
    from amsnet_basicsr.recipes import inference_options

    def needed(label, *parts):
        path = osp.join(folder, *parts)
        if not osp.isfile(path):
            raise SetupError(f'--demo {folder}: no {label} ({path}); run python -m amsnet_basicsr.demo --out {folder}')
        return path

    teacher_options = load_options(needed('teacher options', 'model', 'train_folder.yml'))
    student = needed('student options', 'model', 'denoise.yml')
    needed('student weights', 'model', 'model.pth')
    if not (load_options(student).get('amsnet') or {}).get('single_pass'):
        raise SetupError(f'--demo {folder}: {student} is not a student (the demo ran with --student-iters 0)')
    with open(needed('results', 'results.json')) as handle:
        results = json.load(handle)
    if 'baseline_parameters' not in results:
        raise SetupError(f'{folder}: a one-seed demo run is needed (use the seed_<s> folder of --seeds runs)')
    checkpoint = needed('teacher weights', results['teacher_checkpoint'])
    return dict(teacher=(inference_options(teacher_options, osp.abspath(checkpoint)), None), student=(student, None),
                filters=results['baseline_parameters'], seed=results['seed'])


def cpu_seconds():
    """CPU seconds (user + system) of this process and of its finished children (the training processes)."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def train_on_photos(photos, folder, *, seed, quick, log):
    """``amsnet-train-folder`` (its default recipe) on the noisy ``photos`` themselves, in ``folder``; returns the
    (options, checkpoint) of its chosen B-E teacher and of its student (its ``denoise.yml``), as :func:`load_demo`."""
    from amsnet_basicsr import train_folder
    from amsnet_basicsr.recipes import inference_options, write_png
    photo_dir = osp.join(folder, 'photos')
    os.makedirs(photo_dir, exist_ok=True)
    for name, noisy, _ in photos:
        write_png(osp.join(photo_dir, f'{name}.png'), noisy)
    run_dir = osp.join(folder, 'train_folder')
    args = train_folder.parse_args([photo_dir, '--out', run_dir, '--seed', str(seed), '--quiet'] +
                                   (['--resume'] if osp.isdir(run_dir) else []) + (['--quick'] if quick else []))
    trained = train_folder.run(args, lambda message: log(f'  train-folder: {message}'))
    return dict(teacher=(inference_options(trained.teacher_options, trained.teacher_checkpoint), None),
                student=(trained.options_path, None))


TRAINING_SETS = {  # --train-on: which noisy photos amsnet-train-folder trains on, and the rows' setting
    'test-photos': 'amsnet-train-folder on these noisy photos',
    'other-photos': 'amsnet-train-folder on the demo\'s training photos through this camera',
}


def evaluate_variant(demo, variant, *, whole_photos=False, max_side=MAX_SIDE, block, limit, adapt_steps, train_dir,
                     train_on=(), quick, log):
    """{'rows': [one dict per (method, setting)], 'noise': :func:`noise_statistics` of the test photos} of one
    variant: every method on the same scored images, the whole photos or their blocks (module docstring)."""
    from amsnet_basicsr import baselines
    from amsnet_basicsr.distill import classical
    from amsnet_basicsr.inference import AMSNetDenoiser
    from amsnet_basicsr.models.adaptation import adapted
    from amsnet_basicsr.recipes import RECIPES, scores, to_uint8
    photos = variant_photos(variant, seed=demo['seed'], max_side=max_side)
    noise = noise_statistics(photos)
    log(f'{variant}: {noise_line(noise)}')
    images = photos if whole_photos else variant_blocks(variant, seed=demo['seed'], block=block, limit=limit,
                                                        photos=photos)
    clean8 = [to_uint8(clean) for _, _, clean in images]
    megapixels = sum(noisy.shape[0] * noisy.shape[1] for _, noisy, _ in images) / 1e6
    unit = 'photo' if whole_photos else 'block'
    rows = []

    def add(method, setting, outputs, seconds, *, tiles=None, training=None):
        """A row of the mean scores of ``outputs`` (uint8 BGR, one per scored image), ``seconds`` for all of them."""
        per_image = [(*scores(out, ref), *errors(out, ref)) for out, ref in zip(outputs, clean8)]
        metrics = np.mean(per_image, axis=0)
        rows.append(dict(method=method, setting=setting, psnr=metrics[0], ssim=metrics[1], cast=metrics[2],
                         low_frequency=metrics[3], mean_error_rgb=list(metrics[4:]),
                         psnr_per_image={key: values[0] for (key, _, _), values in zip(images, per_image)},
                         seconds_per_image=seconds / len(images),
                         megapixels_per_second=megapixels / seconds if seconds else None, tiles=tiles,
                         **(training or dict(train_seconds=None, train_cpu_seconds=None))))

    def run_denoiser(method, setting, denoiser, **extra):
        start = time.perf_counter()
        outputs = [to_uint8(denoiser(noisy)) for _, noisy, _ in images]
        add(method, setting, outputs, time.perf_counter() - start,
            tiles=sum(denoiser.tile_count(*noisy.shape[:2]) for _, noisy, _ in images), **extra)

    def add_models(setting, models, *, with_b, training=None):
        """B (optionally), B-E, the student and the student with self-ensemble of ``models`` (:func:`load_demo`)."""
        teacher = [('AMSNet-B (MMDB)', {'r3': {'enabled': False}})] if with_b else []
        for method, overrides in teacher + [('AMSNet-B-E (MMDB + R3)', None)]:
            run_denoiser(method, setting, AMSNetDenoiser.from_options(*models['teacher'], overrides=overrides),
                         training=training)
        for method, overrides in (('AMSNet-D student (one pass)', None), (ENSEMBLE_STUDENT, {'self_ensemble': True})):
            run_denoiser(method, setting, AMSNetDenoiser.from_options(*models['student'], overrides=overrides),
                         training=training)

    add('noisy input', '', [to_uint8(noisy) for _, noisy, _ in images], 0.0)
    for name, factor in demo['filters'].items():
        filter_fn, _ = baselines.FILTERS[name]
        start = time.perf_counter()
        outputs = [to_uint8(filter_fn(noisy, factor)) for _, noisy, _ in images]
        add(name, f'{factor:g} x noise estimate, tuned on the demo\'s validation block', outputs,
            time.perf_counter() - start)
    noise_model = classical.estimate_noise([noisy for _, noisy, _ in photos])
    psd_scale = RECIPES['folder']['bm3d_psd_scale']
    start = time.perf_counter()
    outputs = [to_uint8(classical.bm3d_denoise(noisy, noise_model, psd_scale=psd_scale)) for _, noisy, _ in images]
    add('BM3D, correlated noise', f'PSD measured on the flat blocks of these noisy photos, x {psd_scale:g} (the '
        'teacher of amsnet-train-folder)', outputs, time.perf_counter() - start)
    add_models('the demo\'s model (other photos, the tuning camera)', demo, with_b=True)
    if adapt_steps:
        teacher = AMSNetDenoiser.from_options(*demo['teacher'])
        outputs, start = [], time.perf_counter()
        for _, noisy, _ in images:  # every image adapts from the demo's weights (adapted leaves teacher as it was)
            outputs.append(to_uint8(adapted(teacher, noisy, steps=adapt_steps, lr=ADAPT_LR)(noisy)))
        add(f'AMSNet-B-E + adaptation (per {unit})', f'the demo\'s model, amsnet-denoise --adapt {adapt_steps}',
            outputs, time.perf_counter() - start, tiles=sum(teacher.tile_count(*noisy.shape[:2])
                                                            for _, noisy, _ in images))
    for training_set in train_on:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        training_photos = photos if training_set == 'test-photos' else variant_photos(
            variant, seed=demo['seed'], names=RECIPES['quick' if quick else 'full']['train_images'], max_side=max_side)
        models = train_on_photos(training_photos, osp.join(train_dir, f'seed_{demo["seed"]}', slug(variant),
                                                           training_set), seed=demo['seed'], quick=quick, log=log)
        training = dict(train_seconds=time.perf_counter() - start, train_cpu_seconds=cpu_seconds() - cpu_start)
        log(f'{variant}: amsnet-train-folder on {training_set} took {training["train_seconds"]:.0f} s '
            f'({training["train_cpu_seconds"]:.0f} CPU s)')
        add_models(TRAINING_SETS[training_set], models, with_b=False, training=training)
    for row in rows:
        speed = f'{row["megapixels_per_second"]:6.3f} MP/s' if row['megapixels_per_second'] else ' ' * 11
        log(f'{variant[:40]:40s} {row["method"][:36]:36s} {row["setting"][:24]:24s} {row["psnr"]:6.2f} dB  '
            f'cast {row["cast"]:5.2f}  LF {row["low_frequency"]:5.2f}  {row["seconds_per_image"]:6.2f} s  {speed}')
    return dict(rows=rows, noise=noise)


def slug(variant):
    """A folder name for ``variant``: 'soft, bilinear (the demo...)' -> 'soft_bilinear'."""
    return re.sub(r'[^a-z0-9]+', '_', variant.split(' (')[0].lower()).strip('_')


NUMBERS = ('psnr', 'ssim', 'cast', 'low_frequency', 'seconds_per_image', 'megapixels_per_second', 'tiles',
           'train_seconds', 'train_cpu_seconds')  # a row's numbers that aggregate averages over the runs


def mean_or_none(values):
    """The mean of ``values``, None when any is None (a number a row does not have)."""
    return None if any(value is None for value in values) else float(np.mean(values))


def aggregate(runs):
    """Per variant, per (method, setting): mean and sample standard deviation over the runs (seeds), per photo or
    block too; and the mean of the variant's noise statistics."""
    table = {}
    for variant in runs[0]:
        rows = []
        for index, first in enumerate(runs[0][variant]['rows']):
            run_rows = [run[variant]['rows'][index] for run in runs]
            values = {key: [row[key] for row in run_rows] for key in NUMBERS}
            spread = {f'{key}_std': float(np.std(value, ddof=1)) if len(runs) > 1 else 0.0
                      for key, value in values.items() if key in ('psnr', 'ssim', 'cast', 'low_frequency')}
            rows.append(dict(method=first['method'], setting=first['setting'],
                             mean_error_rgb=[float(v) for v in np.mean([row['mean_error_rgb'] for row in run_rows], 0)],
                             psnr_per_image={key: float(np.mean([row['psnr_per_image'][key] for row in run_rows]))
                                             for key in first['psnr_per_image']},
                             **{key: mean_or_none(value) for key, value in values.items()}, **spread,
                             psnr_per_seed=values['psnr']))
        noises = [run[variant]['noise'] for run in runs]
        noise = dict(lags=noises[0]['lags'], std=float(np.mean([item['std'] for item in noises])),
                     autocorrelation=[float(v) for v in np.mean([item['autocorrelation'] for item in noises], 0)])
        table[variant] = dict(rows=rows, noise=noise)
    return table


def markdown(table, *, seeds, demo_folders, command, whole_photos):
    spread = len(seeds) > 1

    def value(row, key, digits=2):
        text = f'{row[key]:.{digits}f}'
        return text + (f' ± {row[key + "_std"]:.{digits}f}' if spread else '')

    def optional(number, form):
        return '—' if number is None else format(number, form)

    scored = ('the whole test photos, every method (the filters too)' if whole_photos else
              'the test photos\' blocks, every method on the same blocks')
    folders = ', '.join(f'`{folder}`' for folder in dict.fromkeys(demo_folders))
    lines = ['# Data-shift bench', '', f'Command: `{command}`; settings from the demo run(s) in {folders}; noise and '
             f'training seeds {", ".join(map(str, seeds))}.', '',
             f'Scored on {scored}. PSNR / SSIM to the clean image' +
             (' (mean ± standard deviation over seeds)' if spread else '') +
             '; cast: largest absolute per-channel mean error of an image, averaged over images; mean error: per '
             'channel (R, G, B) over all images; LF: RMS of the error blurred with a 4-px Gaussian; all in grey '
             'levels; s: seconds per scored image; MP/s: megapixels denoised per second; tiles: the tiles the AMSNet '
             'denoiser ran on them (×8 with self-ensemble); training: wall (CPU) seconds of amsnet-train-folder.', '']
    for variant, entry in table.items():
        rows = entry['rows']
        photos = list(rows[0]['psnr_per_image']) if whole_photos else []
        per_photo = [f'PSNR {", ".join(photos)}'] if photos else []
        header = ['method', 'setting', 'PSNR', *per_photo, 'SSIM', 'cast', 'mean error R, G, B', 'LF', 's', 'MP/s',
                  'tiles', 'training s (CPU s)']
        lines += [f'## {variant}', '', f'Test photos\' {noise_line(entry["noise"])}.', '',
                  '| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
        for r in rows:
            cells = [r['method'], r['setting'], value(r, 'psnr'),
                     *([' / '.join(f'{r["psnr_per_image"][photo]:.2f}' for photo in photos)] if photos else []),
                     value(r, 'ssim', 4), f'{r["cast"]:.2f}', ', '.join(f'{v:+.2f}' for v in r['mean_error_rgb']),
                     f'{r["low_frequency"]:.2f}', f'{r["seconds_per_image"]:.2f}',
                     optional(r['megapixels_per_second'], '.3g'), optional(r['tiles'], '.0f'),
                     '—' if r['train_seconds'] is None else f'{r["train_seconds"]:.0f} ({r["train_cpu_seconds"]:.0f})']
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def sample_arguments(parser, page):
    """The options of a script that samples photos per pipeline (:func:`pipeline_photos`) into the markdown ``page``:
    ``--out``, ``--photos``, ``--variants`` and ``--tile``."""
    parser.add_argument('--out', required=True, help=f'folder for {page}')
    parser.add_argument('--photos', nargs='+', default=[demo_data.VAL_IMAGE],
                        help='sample photos (default: the demo\'s validation photo, %(default)s)')
    parser.add_argument('--variants', nargs='+', type=int, default=list(range(8)),
                        help='indices of data_shift.VARIANTS (default: the eight pipelines of the demo\'s photos)')
    parser.add_argument('--tile', type=int, default=128, help='tile side (default: amsnet-train-folder\'s 128)')


def command_line(script, argv):
    """The command that ran ``script`` with ``argv`` (None: this process's own arguments), for a result page."""
    return f'python benchmarks/{script} ' + ' '.join(sys.argv[1:] if argv is None else argv)


def write_page(text, *, out, filename):
    """Write the markdown ``text`` to ``out/filename`` (the folder made if need be) and print it."""
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, filename), 'w', encoding='utf-8') as handle:
        handle.write(text)
    print(text)


def run(argv=None):
    parser = argparse.ArgumentParser(prog='data_shift.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--demo', required=True, nargs='+', help='output folder(s) of one-seed demo runs (the '
                        'settings); several folders (e.g. a --seeds run\'s seed_<s>) give mean ± spread over seeds')
    parser.add_argument('--out', required=True, help='folder for data_shift.md and data_shift.json')
    parser.add_argument('--whole-photos', action='store_true', help='denoise and score the whole test photos with '
                        'every method (AMSNet through its tiles; BM3D takes about 70 s per megapixel) instead of '
                        'their blocks; --block and --limit are then unused')
    parser.add_argument('--max-side', type=int, default=MAX_SIDE, help='reduce every photo to at most this many px '
                        'before the soft variants enlarge it 2x (default: the demo\'s %(default)s)')
    parser.add_argument('--block', type=int, default=256, help='test block side (default: the demo\'s 256)')
    parser.add_argument('--limit', type=int, default=3, help='blocks per test photo (default: the demo\'s 3)')
    parser.add_argument('--adapt-steps', type=int, default=ADAPT_STEPS, help='test-time adaptation steps per scored '
                        'image (default: %(default)s; 0 = no adaptation row)')
    parser.add_argument('--train-on', nargs='+', choices=list(TRAINING_SETS), default=[],
                        help='also run amsnet-train-folder\'s default recipe per variant on its noisy test photos '
                        'themselves and/or on the demo\'s training photos through its camera (about 9 CPU-minutes '
                        'each per variant and seed)')
    parser.add_argument('--variants', nargs='+', type=int, help='indices of VARIANTS to run (default: all): ' +
                        '; '.join(f'{index} {name}' for index, name in enumerate(VARIANTS)))
    parser.add_argument('--seeds', nargs='+', type=int, help='noise and training seeds, each run with the settings '
                        'of the one --demo folder (default: the seed of each --demo run)')
    parser.add_argument('--quick', action='store_true', help='amsnet-train-folder --quick (seconds; for tests)')
    args = parser.parse_args(argv)
    if args.seeds and len(args.demo) > 1:
        raise OptionError('--seeds: give one --demo folder (its settings are used for every seed)')
    torch.set_num_threads(1)
    demos = [load_demo(folder) for folder in args.demo]
    if args.seeds:
        demos = [dict(demos[0], seed=seed) for seed in args.seeds]
    names = list(VARIANTS)
    chosen = [names[index] for index in args.variants] if args.variants else names
    train_dir = osp.join(args.out, 'train_folder_runs')
    log = partial(print, flush=True)
    runs = [{variant: evaluate_variant(demo, variant, whole_photos=args.whole_photos, max_side=args.max_side,
                                       block=args.block, limit=args.limit, adapt_steps=args.adapt_steps,
                                       train_dir=train_dir, train_on=args.train_on, quick=args.quick, log=log)
             for variant in chosen}
            for demo in demos]
    table = aggregate(runs)
    os.makedirs(args.out, exist_ok=True)
    command = command_line('data_shift.py', argv)
    seeds = [demo['seed'] for demo in demos]
    text = markdown(table, seeds=seeds, demo_folders=args.demo, command=command, whole_photos=args.whole_photos)
    with open(osp.join(args.out, 'data_shift.md'), 'w') as handle:
        handle.write(text + '\n')
    with open(osp.join(args.out, 'data_shift.json'), 'w') as handle:
        json.dump(dict(command=command, demo=args.demo, seeds=seeds, whole_photos=args.whole_photos,
                       max_side=args.max_side, variants={variant: entry['rows'] for variant, entry in table.items()},
                       noise={variant: entry['noise'] for variant, entry in table.items()}),
                  handle, indent=1, default=float)
    print(text)
    return table


def main(argv=None):
    """Console entry: exit status 0, or 2 with one line naming the problem (:mod:`amsnet_basicsr.errors`)."""
    from amsnet_basicsr import plugin  # noqa: F401  (registers the architectures; the torchvision alias before basicsr)
    return run_command('data_shift.py', run, argv)


if __name__ == '__main__':
    sys.exit(main())

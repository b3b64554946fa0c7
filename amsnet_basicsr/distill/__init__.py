"""Stage ``distill`` (AMSNet-D): a frozen AMSNet teacher's output is the target of a single-pass student.

The teacher is ``network_teacher`` of the student's options file, loaded from ``path.pretrain_network_teacher``
(any D_E weights of stage ``mask`` (B) or ``finetune`` (P)); it denoises with the scheme of its own section
``amsnet_teacher`` -- MMDB at the test stride (Eq. 6-8), then R^3 when enabled (the -E variants) -- through the one
inference object :class:`amsnet_basicsr.inference.AMSNetDenoiser`, with position-seeded masks. The student
(``network_g``, ``amsnet.single_pass: true``) learns noisy -> teacher output at full resolution with an L1 loss, and
runs once per image at test time, with no PD and no mask. No clean image is read anywhere: the teacher itself was
trained on noisy images only, and its targets are computed from the same noisy crops.

Everything about the teacher and its targets lives in this package: the teacher (:func:`teacher_config`,
:func:`build_teacher`, :func:`teacher_output`), the check of a stage-``distill`` options file
(:func:`check_distill_options`, run by :func:`amsnet_basicsr.options_check.check_model_options`), the check of a
targets LMDB (:func:`check_targets_folder`), and the command that writes one (:mod:`amsnet_basicsr.distill.targets`).

Targets come from one of two places (``AMSNetModel``, stage ``distill``; the teacher is built by
:func:`build_teacher`):

* precomputed (the default of the shipped options, faster per student iteration, ``docs/distillation.md``):
  ``amsnet-distill-prepare -opt <options>`` (:mod:`amsnet_basicsr.distill.targets`) runs the teacher once over every
  crop of the noisy training LMDB (``datasets.train.dataroot_lq``) and writes a BasicSR LMDB with the same keys to
  ``datasets.train.dataroot_gt``, read with the noisy one by BasicSR's ``PairedImageDataset`` (random crops and flips
  of both);
* on the fly: with a dataset of noisy images only (``NoisyImageDataset``), the teacher denoises every batch.

The targets LMDB carries ``amsnet_teacher.json`` (teacher, weights, scheme); the distill stage refuses a
``dataroot_gt`` without it, so a clean ground-truth LMDB cannot be used by mistake.
"""
import json
import os
import os.path as osp
from typing import Any, Mapping, Tuple, Union

import torch

from ..config import SchemeConfig
from ..errors import OptionError
from ..inference import AMSNetDenoiser
from ..networks import build_denoiser, check_network_options
from . import classical

TEACHER_INFO = 'amsnet_teacher.json'
TEACHER_SECTION = 'amsnet_teacher'


# ----------------------------------------------------------------------------------------------- the teacher
def teacher_config(opt: Mapping[str, Any]) -> SchemeConfig:
    """The teacher's scheme (:class:`SchemeConfig` of the ``amsnet_teacher`` section; the paper's defaults when
    absent); it must run the scheme, not a single pass."""
    config = SchemeConfig.from_section(opt.get(TEACHER_SECTION), key=TEACHER_SECTION)
    if config.single_pass:
        raise OptionError(f'{TEACHER_SECTION}.single_pass: the teacher runs the mask scheme (MMDB, R^3); '
                          'a single-pass network cannot be the teacher')
    return config


def build_teacher(opt: Mapping[str, Any], device: Union[str, torch.device] = 'cpu'
                  ) -> Tuple[torch.nn.Module, SchemeConfig]:
    """(frozen teacher network in eval mode, its :class:`SchemeConfig`) from ``network_teacher``,
    ``path.pretrain_network_teacher`` and ``amsnet_teacher`` (its ``size_multiple: auto`` resolved against the
    teacher)."""
    if not isinstance(opt.get('network_teacher'), dict):
        raise OptionError('network_teacher: the distill stage needs the teacher D_E (network_teacher: {type: ...}) '
                          'unless datasets.train.dataroot_gt holds targets from amsnet-distill-prepare')
    weights = (opt.get('path') or {}).get('pretrain_network_teacher')
    if not weights:
        raise OptionError('path.pretrain_network_teacher: the trained teacher weights are required')
    param_key = (opt.get('path') or {}).get('param_key_teacher') or 'auto'  # a named key must exist: no fallback
    net = build_denoiser(opt, weights, param_key, device, label='teacher')
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net, teacher_config(opt).resolved(net, key=TEACHER_SECTION)


@torch.no_grad()
def teacher_output(teacher: torch.nn.Module, config: SchemeConfig, noisy: torch.Tensor,
                   device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """The teacher's denoised ``noisy`` (B, C, H, W): the teacher network with its scheme ``config`` as an
    :class:`~amsnet_basicsr.inference.AMSNetDenoiser` on tensors (position-seeded masks; MMDB, Eq. 6-8, then R^3
    when ``config.r3.enabled``), on ``device`` (default: the batch's), clamped to [0, 1]. The teacher takes the
    student's batches as they are (its channels are theirs)."""
    denoiser = AMSNetDenoiser(teacher, config, channels=noisy.shape[1], device=device)
    return denoiser(noisy).clamp_(0, 1)


def check_targets_folder(path: Union[str, os.PathLike], key: str = 'datasets.train.dataroot_gt') -> dict:
    """The teacher description of a targets LMDB; :class:`OptionError` unless ``path`` is one
    (``amsnet-distill-prepare`` writes ``amsnet_teacher.json`` into every LMDB it completes)."""
    info_path = osp.join(str(path), TEACHER_INFO)
    if not osp.isfile(info_path):
        raise OptionError(f'{key}: {path} is not a teacher-targets LMDB (no {TEACHER_INFO}); the distill stage '
                          'never reads clean images -- make it with amsnet-distill-prepare -opt <options>')
    try:
        with open(info_path, encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise OptionError(f'{key}: cannot read {info_path}: {error}') from error


# ----------------------------------------------------------------------------------------------- the options
def check_distill_options(opt: Mapping[str, Any]) -> None:
    """Stage ``distill`` (AMSNet-D): the student is single-pass; its targets are a teacher's, never clean images.

    With ``datasets.train.dataroot_gt`` (precomputed targets) the set must be a ``PairedImageDataset`` and an existing
    ``dataroot_gt`` a targets LMDB of this ``dataroot_lq`` (:func:`check_targets_folder`); without it the teacher runs
    on the fly, so ``network_teacher``, its weights and its scheme (``amsnet_teacher``) are checked instead.
    Raises :class:`OptionError` naming the key."""
    if not SchemeConfig.from_options(opt).single_pass:
        raise OptionError('amsnet.single_pass must be true for train.stage distill: network_g is the student, run '
                          'once per image (the teacher\'s scheme is the amsnet_teacher section)')
    if opt.get(classical.SECTION) is not None:
        classical.check_section(opt[classical.SECTION])
    train_set = ((opt.get('datasets') or {}).get('train')) or {}
    if train_set.get('dataroot_gt') is not None:
        _check_precomputed_targets(train_set)
    else:
        _check_teacher_on_the_fly(opt)


def _check_precomputed_targets(train_set):
    dataroot_gt = train_set['dataroot_gt']
    if train_set.get('type') != 'PairedImageDataset':
        raise OptionError(f'datasets.train.type must be PairedImageDataset with precomputed targets '
                          f'(dataroot_gt), got {train_set.get("type")!r}')
    if os.path.exists(str(dataroot_gt)):
        info = check_targets_folder(dataroot_gt)
        beside = os.path.dirname(os.path.abspath(str(dataroot_gt)))  # amsnet-distill-prepare records it so
        source = os.path.relpath(os.path.abspath(str(train_set.get('dataroot_lq'))), beside)
        if info.get('source') != source:
            raise OptionError(f'datasets.train.dataroot_gt: {dataroot_gt} holds the teacher\'s targets for '
                              f'{info.get("source")}, not for datasets.train.dataroot_lq {source}')


def _check_teacher_on_the_fly(opt):
    if not isinstance(opt.get('network_teacher'), dict):
        raise OptionError('network_teacher is required for train.stage distill without precomputed targets '
                          '(datasets.train.dataroot_gt from amsnet-distill-prepare)')
    check_network_options(opt, 'network_teacher')
    teacher_config(opt)
    path = opt.get('path') or {}
    if not path.get('pretrain_network_teacher'):
        raise OptionError(f'path.pretrain_network_teacher: the trained teacher weights are required ({TEACHER_SECTION} '
                          'gives its scheme)')
    if 'network_teacher' not in (path.get('ignore_resume_networks') or []):
        raise OptionError('path.ignore_resume_networks must list network_teacher: on a resume BasicSR would otherwise '
                          'look for a teacher checkpoint of the run (net_teacher_<iter>.pth), which is never written')
    if path.get('param_key_teacher') == 'params_ema':
        raise OptionError('path.param_key_teacher: params_ema is reset to params by BasicSR on a resume; precompute '
                          'the targets with amsnet-distill-prepare (which reads params_ema once) or use params')

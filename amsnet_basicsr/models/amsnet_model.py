"""AMSNetModel: BasicSR's SRModel with AMSNet's asymmetric mask scheme around the denoiser ``network_g``."""
from collections import OrderedDict
from dataclasses import dataclass, fields

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel

from .. import checkpoint, scheme, tiling
from ..errors import OptionError
from ..options_check import STAGE_LOSSES, check_model_options
from ..submission import SubmissionMixin


@dataclass(frozen=True)
class SchemeOptions:
    """The ``amsnet:`` section of an options file (the paper's defaults, Sec. 4.1 and its supplement)."""
    train_stride: int = 5
    test_stride: int = 2
    num_branches: int = 2
    masks_per_pixel: int = 1
    size_multiple: int = 1
    chunk_size: int = None
    seed: int = 0
    r3: dict = None
    tile: dict = None

    @classmethod
    def from_opt(cls, section):
        """Validate ``opt['amsnet']``; errors name the key and the allowed values."""
        section = dict(section or {})
        allowed = [field.name for field in fields(cls)]
        unknown = sorted(set(section) - set(allowed))
        if unknown:
            raise OptionError(f'amsnet.{unknown[0]}: unknown option; allowed: {", ".join(allowed)}')
        options = cls(**section)

        def is_int(value):
            return isinstance(value, int) and not isinstance(value, bool)

        for key in ('train_stride', 'test_stride', 'size_multiple'):
            if not is_int(getattr(options, key)) or getattr(options, key) < 1:
                raise OptionError(f'amsnet.{key} must be an integer >= 1, got {getattr(options, key)!r}')
        if options.chunk_size is not None and (not is_int(options.chunk_size) or options.chunk_size < 1):
            raise OptionError(f'amsnet.chunk_size must be null or an integer >= 1, got {options.chunk_size!r}')
        if not is_int(options.seed):
            raise OptionError(f'amsnet.seed must be an integer, got {options.seed!r}')
        if not is_int(options.num_branches) or options.num_branches < 2:
            raise OptionError(f'amsnet.num_branches (k) must be an integer >= 2, got {options.num_branches!r}')
        if not is_int(options.masks_per_pixel) or not 1 <= options.masks_per_pixel < options.num_branches:
            raise OptionError(f'amsnet.masks_per_pixel (m) must be an integer in [1, k-1] = '
                              f'[1, {options.num_branches - 1}] (mask ratio m/k in [1/k, (k-1)/k]), '
                              f'got {options.masks_per_pixel!r}')
        if options.r3 is not None and not isinstance(options.r3, dict):
            raise OptionError(f'amsnet.r3 must be a mapping with enabled, times, prob; got {options.r3!r}')
        r3 = {'enabled': False, 'times': 8, 'prob': 0.16, **(options.r3 or {})}
        unknown = sorted(set(r3) - {'enabled', 'times', 'prob'})
        if unknown:
            raise OptionError(f'amsnet.r3.{unknown[0]}: unknown option; allowed: enabled, times, prob')
        if not isinstance(r3['enabled'], bool):
            raise OptionError(f'amsnet.r3.enabled must be true or false, got {r3["enabled"]!r}')
        if not is_int(r3['times']) or r3['times'] < 1:
            raise OptionError(f'amsnet.r3.times must be an integer >= 1, got {r3["times"]!r}')
        if isinstance(r3['prob'], bool) or not isinstance(r3['prob'], (int, float)) or not 0.0 <= r3['prob'] <= 1.0:
            raise OptionError(f'amsnet.r3.prob must be a number in [0, 1], got {r3["prob"]!r}')
        tile = tiling.tile_options(options.tile, options.test_stride, options.size_multiple)
        return cls(**{**section, 'r3': r3, 'tile': tile})

    def inference_kwargs(self):
        """Keyword arguments of :func:`scheme.denoise` for MMDB at the test stride, then R^3 if enabled."""
        return dict(stride=self.test_stride, num_branches=self.num_branches, masks_per_pixel=self.masks_per_pixel,
                    multiple=self.size_multiple, chunk_size=self.chunk_size,
                    refine_times=self.r3['times'] if self.r3['enabled'] else 0, refine_prob=self.r3['prob'])


@MODEL_REGISTRY.register()
class AMSNetModel(SubmissionMixin, SRModel):
    """AMSNet around any registered denoiser D_E (``network_g``).

    Training (``train.stage``): ``mask`` is variant B — PD at ``amsnet.train_stride``, one fresh random mask per
    step and L_m (Eq. 2-4); ``finetune`` is variant P — the full MMDB output at the training stride and L_t
    (Eq. 9-10). Testing: MMDB at ``amsnet.test_stride`` (Eq. 6-8), then R^3 when ``amsnet.r3.enabled`` (-E).
    Only the noisy ``lq`` is read in training; ``gt``, when a validation set has it, only feeds the metrics.
    """

    STAGE_LOSSES = STAGE_LOSSES  # train.stage -> the train.pixel_opt.type it needs

    def __init__(self, opt):
        check_model_options(opt, self.STAGE_LOSSES)  # errors name the key and the allowed values
        self.scheme_options = SchemeOptions.from_opt(opt.get('amsnet'))
        super().__init__(opt)

    def model_to_device(self, net):
        """BaseModel.model_to_device, also on CPUs: DDP with ``device_ids=None`` there (Gloo), the GPU otherwise."""
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids,
                                          find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Crash-safe (temp file + rename) and never writes NaN/Inf weights: see :mod:`amsnet_basicsr.checkpoint`."""
        checkpoint.save_network(self, net, net_label, current_iter, param_key)

    def save_training_state(self, epoch, current_iter):
        """Crash-safe, with every rank's RNG states (mask generator, torch, CUDA, numpy, random)."""
        checkpoint.save_training_state(self, epoch, current_iter, getattr(self, 'mask_generator', None))

    def resume_training(self, resume_state):
        """Optimisers and schedulers (BasicSR), then this rank's RNG states, so the random streams continue."""
        super().resume_training(resume_state)
        checkpoint.restore_training_rng(self, resume_state, getattr(self, 'mask_generator', None))

    def init_training_settings(self):
        self.stage = self.opt['train'].get('stage', next(iter(self.STAGE_LOSSES)))  # checked in __init__
        super().init_training_settings()
        seed = (self.opt.get('manual_seed') or 0) + self.opt.get('rank', 0)
        self.mask_generator = torch.Generator(self.device).manual_seed(seed)

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        """Any ``torch.optim`` optimiser by name (basicsr 1.4.2 knows only Adam; the paper uses AdamW)."""
        return getattr(torch.optim, optim_type)(params, lr, **kwargs)

    def optimize_parameters(self, current_iter):
        options = self.scheme_options
        self.optimizer_g.zero_grad()
        if self.stage == 'mask':
            prediction, masked = scheme.masked_training_forward(
                self.net_g, self.lq, options.train_stride, self.mask_generator, options.num_branches,
                options.masks_per_pixel, options.size_multiple)
            loss, name = self.cri_pix(prediction, self.lq, masked), 'l_mask'
        else:
            batch, _, height, width = self.lq.shape
            groups = scheme.sample_mask_groups(batch, height, width, options.num_branches, self.mask_generator)
            denoised = scheme.mmdb(self.net_g, self.lq, options.train_stride, groups, options.num_branches,
                                   options.masks_per_pixel, options.size_multiple, options.chunk_size)
            loss, name = self.cri_pix(denoised, self.lq), 'l_total'
        loss.backward()
        self.optimizer_g.step()
        # Averaged over ranks on every rank (one all-reduce + .item(), as BasicSR's reduce_loss_dict): the
        # non-finite guard reads the already-synchronised floats, so it adds no GPU sync.
        self.log_dict = checkpoint.reduce_loss_dict(OrderedDict([(name, loss)]), self.opt)
        checkpoint.check_finite_log(self.log_dict, current_iter, self.opt)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        """Denoise ``self.lq`` into ``self.output`` with masks seeded from ``amsnet.seed`` (reproducible).

        With ``amsnet.tile.size`` set, the image is processed in overlapped tiles (:mod:`amsnet_basicsr.tiling`),
        so memory is bounded by the tile size (full-size DND / PolyU / camera images).
        """
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        options = self.scheme_options
        with torch.no_grad():
            if options.tile['size']:
                self.output = tiling.tiled_denoise(net, self.lq, seed=options.seed, tile_size=options.tile['size'],
                                                   overlap=options.tile['overlap'], tile_batch=options.tile['batch'],
                                                   **options.inference_kwargs())
            else:
                generator = torch.Generator(self.device).manual_seed(options.seed)
                self.output = scheme.denoise(net, self.lq, generator, **options.inference_kwargs())
        net.train(was_training)

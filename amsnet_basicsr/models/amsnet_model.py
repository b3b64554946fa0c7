"""AMSNetModel: BasicSR's SRModel with AMSNet's asymmetric mask scheme around the denoiser ``network_g``."""
import contextlib
from collections import OrderedDict

import torch
from torch.nn.parallel import DataParallel, DistributedDataParallel

from .. import checkpoint, distill, guards, networks, scheme
from ..config import SchemeConfig
from ..inference import AMSNetDenoiser
from ..options_check import STAGE_LOSSES, check_model_options, stage_pixel_options
from ..progress import BATCH_POSITION_KEY
from .validation import ValidationMixin

from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class AMSNetModel(ValidationMixin, SRModel):
    """AMSNet around any registered denoiser D_E (``network_g``).

    Training (``train.stage``): ``mask`` is variant B — PD at ``amsnet.train_stride``, one fresh random mask per
    step and L_m (Eq. 2-4); ``finetune`` is variant P — the full MMDB output at the training stride and L_t
    (Eq. 9-10); ``distill`` (AMSNet-D, :mod:`amsnet_basicsr.distill`) — ``network_g`` is a single-pass student
    learning the frozen teacher's output with L1. Testing: MMDB at ``amsnet.test_stride`` (Eq. 6-8), then R^3 when
    ``amsnet.r3.enabled`` (-E); one pass of ``network_g`` when ``amsnet.single_pass``.
    Only the noisy ``lq`` is read in training (and, in stage ``distill``, the teacher's targets as ``gt``); ``gt``
    of a validation set only feeds the metrics. ``train.stage`` alone decides the loss (:attr:`STAGE_LOSSES`;
    ``train.pixel_opt`` only sets its parameters). Validation: :class:`~.validation.ValidationMixin`.
    """

    STAGE_LOSSES = STAGE_LOSSES  # train.stage -> its loss (LOSS_REGISTRY name); the first is the default stage

    def __init__(self, opt):
        check_model_options(opt, self.STAGE_LOSSES)  # errors name the key and the allowed values
        self.scheme_config = SchemeConfig.from_options(opt)
        self.epoch_batches = 0  # position of the last fed batch in its epoch (amsnet_basicsr.progress)
        super().__init__(opt)
        bare = self.get_bare_model(self.net_g)
        self.scheme_config = self.scheme_config.resolved(bare)  # amsnet.size_multiple: auto -> the network's own
        self.net_channels = networks.model_channels(bare, opt.get('network_g'))

    def feed_data(self, data):
        """SRModel.feed_data, remembering the batch's position in its epoch (saved with the training state).
        A batch without ``gt`` clears the previous one, so a validation image's ``gt`` never outlives its batch."""
        self.__dict__.pop('gt', None)
        super().feed_data(data)
        self.epoch_batches = int(data.get(BATCH_POSITION_KEY, 0))

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
        checkpoint.save_training_state(self, epoch, current_iter, getattr(self, 'mask_generator', None),
                                       batches_into_epoch=self.epoch_batches)

    def resume_training(self, resume_state):
        """Optimisers and schedulers (BasicSR), then this rank's RNG states, so the random streams continue."""
        super().resume_training(resume_state)
        checkpoint.restore_training_rng(self, resume_state, getattr(self, 'mask_generator', None))

    def init_training_settings(self):
        """SRModel's (EMA, loss, optimiser, schedulers) with the loss of ``train.stage``: ``train.pixel_opt`` gets
        the stage's ``type`` filled in when it is left out (:func:`~amsnet_basicsr.options_check.stage_pixel_options`;
        checked in ``__init__``), as BasicSR builds ``cri_pix`` from it; then the mask generator and, in stage
        ``distill`` without precomputed targets, the frozen teacher."""
        train = self.opt['train']
        self.stage = train.get('stage', next(iter(self.STAGE_LOSSES)))
        train['pixel_opt'] = stage_pixel_options(train, self.STAGE_LOSSES)
        super().init_training_settings()
        seed = (self.opt.get('manual_seed') or 0) + self.opt.get('rank', 0)
        self.mask_generator = torch.Generator(self.device).manual_seed(seed)
        if self.stage == 'distill':
            self.targets_from_dataset = self.opt['datasets']['train'].get('dataroot_gt') is not None
            if not self.targets_from_dataset:
                self.net_teacher, self.teacher_config = distill.build_teacher(self.opt, self.device)

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        """Any ``torch.optim`` optimiser by name (basicsr 1.4.2 knows only Adam; the paper uses AdamW)."""
        return getattr(torch.optim, optim_type)(params, lr, **kwargs)

    def stage_loss(self):
        """(log name, loss) of one training step on ``self.lq`` (the noisy batch; nothing clean is read).

        Stage ``mask`` (variant B): one fresh mask at the training stride, L_m on the masked pixels (Eq. 2-4).
        Stage ``finetune`` (variant P): the full MMDB output at the training stride and L_t (Eq. 9-10).
        Stage ``distill`` (AMSNet-D): L1 of the student's single pass to the teacher's output on the same noisy
        batch (precomputed ``gt`` of the targets LMDB, or the frozen teacher run on the batch).
        """
        config = self.scheme_config
        if self.stage == 'distill':
            if self.targets_from_dataset:
                target = self.gt  # the precomputed teacher output (checked to be one before training)
            else:
                target = distill.teacher_output(self.net_teacher, self.teacher_config, self.lq)
            return 'l_distill', self.cri_pix(self.net_g(self.lq), target)
        if self.stage == 'mask':
            prediction, masked = self.masked_forward(self.net_g, self.lq, self.mask_generator)
            return 'l_mask', self.cri_pix(prediction, self.lq, masked)
        batch, _, height, width = self.lq.shape
        groups = scheme.sample_mask_groups(batch, height, width, config.num_branches, self.mask_generator)
        denoised = scheme.mmdb(self.net_g, self.lq, config.train_stride, groups, num_branches=config.num_branches,
                               masks_per_pixel=config.masks_per_pixel, multiple=config.size_multiple,
                               **config.chunk_kwargs(self.device.type))
        return 'l_total', self.cri_pix(denoised, self.lq)

    def optimize_parameters(self, current_iter):
        """The one training step of every model here: :meth:`stage_loss`, backward, optimiser step, logs, EMA."""
        self.optimizer_g.zero_grad()
        name, loss = self.stage_loss()
        loss.backward()
        self.optimizer_g.step()
        # Averaged over ranks on every rank (one all-reduce + .item(), as BasicSR's reduce_loss_dict): the
        # non-finite guard reads the already-synchronised floats, so it adds no GPU sync.
        self.log_dict = guards.reduce_loss_dict(OrderedDict([(name, loss)]), self.opt)
        guards.check_finite_log(self.log_dict, current_iter, self.opt)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        """Denoise ``self.lq`` into ``self.output``: the network of :meth:`evaluation_network` as an
        :class:`~amsnet_basicsr.inference.AMSNetDenoiser` with ``amsnet:`` (masks seeded from ``amsnet.seed`` by pixel
        position, tiles of ``amsnet.tile`` so memory is bounded on images of any size), on ``self.lq``'s device:
        the same output as ``amsnet-denoise`` for the same settings."""
        with self.evaluation_network() as net:
            self.output = AMSNetDenoiser(net, self.scheme_config, channels=self.net_channels)(self.lq)

    @contextlib.contextmanager
    def evaluation_network(self):
        """The network inference uses (``net_g_ema`` when there is one), in eval mode inside the block."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        try:
            yield net
        finally:
            net.train(was_training)

    def masked_forward(self, net, noisy, generator):
        """The single-mask forward of Eq. 2-3 at ``amsnet.train_stride``: (prediction, masked pixels)."""
        config = self.scheme_config
        return scheme.masked_training_forward(net, noisy, config.train_stride, generator,
                                              num_branches=config.num_branches,
                                              masks_per_pixel=config.masks_per_pixel, multiple=config.size_multiple)

    def masked_holdout_loss(self, noisy):
        """The masked hold-out loss of the noisy batch ``noisy`` (the clean-free validation metric
        ``masked_holdout``; lower is better): L_m (Eq. 4) of the single-mask training forward (Eq. 2-3: PD at
        ``amsnet.train_stride``, branch 0 of a k-partition) with a fixed mask drawn from a generator seeded with
        ``amsnet.seed``, against ``noisy`` itself. The network of :meth:`test`, in eval mode, without gradients;
        deterministic, and nothing but ``noisy`` is read."""
        generator = torch.Generator(noisy.device).manual_seed(self.scheme_config.seed)
        with self.evaluation_network() as net, torch.no_grad():
            prediction, masked = self.masked_forward(net, noisy, generator)
            return scheme.mask_loss(prediction, noisy, masked).item()

"""The CUDA paths: the one inference function, the model's test and training step, and the student, on a GPU."""
import torch

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import tiling
from amsnet_basicsr.config import SchemeConfig
from amsnet_basicsr.masks import PositionalMasks

from basicsr.archs import build_network

NET = {'type': 'DnCNN', 'in_nc': 3, 'out_nc': 3, 'nc': 16, 'nb': 5, 'act_mode': 'R'}
STUDENT = {'type': 'NAFNet', 'img_channel': 3, 'width': 16, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1, 1, 1],
           'dec_blk_nums': [1, 1, 1, 1]}


def pair(options):
    torch.manual_seed(0)
    cpu = build_network(dict(options)).eval()
    gpu = build_network(dict(options)).eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


def test_scheme_inference_on_cuda_matches_the_cpu():
    """P-E (MMDB + R^3) tiled on the GPU with the image on the CPU (``device=cuda``) and wholly on the GPU give the
    CPU's output up to float rounding; masks are position-seeded, so the draws are identical."""
    cpu, gpu = pair(NET)
    image = torch.rand(1, 3, 300, 220, generator=torch.Generator().manual_seed(0))
    config = SchemeConfig.from_section({'r3': {'enabled': True, 'times': 4},
                                        'tile': {'size': 128, 'overlap': 32}}).resolved(cpu)
    reference = tiling.denoise_image(cpu, image, masks=PositionalMasks(0), **config.inference_kwargs('cpu'))
    streamed = tiling.denoise_image(gpu, image, masks=PositionalMasks(0), **config.inference_kwargs('cuda'),
                                    device='cuda')
    resident = tiling.denoise_image(gpu, image.cuda(), masks=PositionalMasks(0), **config.inference_kwargs('cuda'))
    assert streamed.device.type == 'cpu' and resident.device.type == 'cuda'
    assert (streamed - reference).abs().max() < 1e-4 and (resident.cpu() - reference).abs().max() < 1e-4


def test_student_single_pass_on_cuda_in_fp32_bf16_fp16():
    cpu, gpu = pair(STUDENT)
    image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    config = SchemeConfig.from_section({'single_pass': True}).resolved(cpu)
    reference = tiling.denoise_image(cpu, image, **config.inference_kwargs('cpu'))
    for dtype, tolerance in ((None, 1e-4), (torch.bfloat16, 0.05), (torch.float16, 0.01)):
        with torch.autocast('cuda', dtype=dtype, enabled=dtype is not None):
            output = tiling.denoise_image(gpu, image, **config.inference_kwargs('cuda'), device='cuda')
        assert (output.float() - reference).abs().mean() < tolerance, dtype


def test_training_step_of_every_stage_runs_on_cuda(tmp_path):
    """One optimiser step of stages mask, finetune and distill (teacher on the fly) on the GPU; finite losses."""
    from basicsr.models import build_model
    torch.manual_seed(0)
    teacher = build_network({'type': 'MaskAwareDnCNN', 'nc': 8, 'nb': 3})
    torch.save({'params': teacher.state_dict()}, tmp_path / 'teacher.pth')
    base = {'model_type': 'AMSNetModel', 'num_gpu': 1, 'manual_seed': 0, 'scale': 1, 'is_train': True,
            'dist': False, 'rank': 0, 'world_size': 1, 'path': {'pretrain_network_g': None, 'strict_load_g': True},
            'train': {'optim_g': {'type': 'AdamW', 'lr': 1e-4}, 'total_iter': 10, 'warmup_iter': -1,
                      'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 1}},
            'datasets': {'train': {}}}
    stages = {
        'mask': dict(network_g=dict(NET), amsnet={'train_stride': 2}, loss='MaskedL1Loss'),
        'finetune': dict(network_g=dict(NET), amsnet={'train_stride': 2}, loss='FinetuneLoss'),
        'distill': dict(network_g=dict(STUDENT), amsnet={'single_pass': True}, loss='L1Loss',
                        network_teacher={'type': 'MaskAwareDnCNN', 'nc': 8, 'nb': 3},
                        amsnet_teacher={'r3': {'enabled': True, 'times': 2}}),
    }
    for stage, settings in stages.items():
        opt = {**base, 'name': stage, 'network_g': settings['network_g'], 'amsnet': settings['amsnet'],
               'train': {**base['train'], 'stage': stage, 'pixel_opt': {'type': settings['loss']}}}
        if stage == 'distill':
            opt.update(network_teacher=settings['network_teacher'], amsnet_teacher=settings['amsnet_teacher'],
                       path={**base['path'], 'pretrain_network_teacher': str(tmp_path / 'teacher.pth')})
        model = build_model(opt)
        assert model.device.type == 'cuda'
        model.feed_data({'lq': torch.rand(2, 3, 64, 64)})
        model.optimize_parameters(1)
        assert all(torch.isfinite(torch.tensor(value)) for value in model.log_dict.values()), stage

"""The GPU check: every CUDA path of the project in one run (< 8 minutes on one GPU), figures in one JSON.

    python scripts/gpu_check.py --out gpu_check        # writes gpu_check/gpu_check.json (+ logs)

1. ``pytest tests_cuda``: the CUDA-only tests (inference on the GPU equals the CPU's; a training step of every
   stage; the student in fp32 / bf16 / fp16).
2. A short ``torchrun`` training (stage mask, 300 iterations) with NCCL: 2 processes when 2 GPUs are visible,
   else 1 (NCCL cannot put two ranks on one GPU).
3. The inference benchmark (``benchmarks/inference_speed.py``) on the GPU: the paper's Restormer, MMDB and
   MMDB + R^3 in fp32 / bf16 / fp16 with ``chunk_size: auto``, and the teacher's P-E against the distilled student
   (``--sections blocks,student``).
4. channels_last and ``torch.compile`` of the student and of the Restormer teacher, fp32 and bf16, 512x512.

Every step runs in its own process with a time limit (120 + 150 + 150 + 90 s at most), and ``gpu_check.json`` is
rewritten after each one, so a run cut short keeps what it measured.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INFERENCE_SPEED = REPO / 'benchmarks' / 'inference_speed.py'  # the inference benchmark (steps 3 and 4)


def run(name, command, out, timeout, cwd=REPO):
    """Run ``command`` in ``cwd``; keep its output in ``<out>/<name>.log``; return (ok, seconds)."""
    start = time.time()
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, 'PYTHONPATH': str(REPO)})
        ok, text = result.returncode == 0, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        ok, text = False, f'timed out after {timeout} s\n{error.stdout or ""}{error.stderr or ""}'
    (out / f'{name}.log').write_text(text if isinstance(text, str) else text.decode())
    print(f'{name}: {"ok" if ok else "FAILED"} in {time.time() - start:.0f} s', flush=True)
    return ok, time.time() - start


def ddp_training(out, timeout):
    import cv2
    import numpy as np
    import torch
    import yaml
    data = out / 'ddp_data'
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(16):
        cv2.imwrite(str(data / f'{index}.png'), rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    processes = 2 if torch.cuda.device_count() >= 2 else 1
    options = {
        'name': 'gpu_check_ddp', 'model_type': 'AMSNetModel', 'num_gpu': 'auto', 'manual_seed': 0, 'scale': 1,
        'amsnet': {'train_stride': 5, 'test_stride': 2, 'size_multiple': 8},
        'datasets': {'train': {'name': 'noise', 'type': 'NoisyImageDataset', 'dataroot_lq': str(data),
                               'io_backend': {'type': 'disk'}, 'crop_size': 160, 'use_hflip': True,
                               'use_rot': False, 'num_worker_per_gpu': 2, 'batch_size_per_gpu': 4,
                               'dataset_enlarge_ratio': 100}},
        'network_g': {'type': 'Restormer', 'inp_channels': 3, 'out_channels': 3, 'dim': 16,
                      'num_blocks': [1, 2, 2, 2], 'num_refinement_blocks': 1, 'heads': [1, 2, 4, 8],
                      'ffn_expansion_factor': 2.66, 'bias': False, 'LayerNorm_type': 'BiasFree'},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'stage': 'mask', 'optim_g': {'type': 'AdamW', 'lr': 1e-4},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [300], 'restart_weights': [1],
                                'eta_min': 1e-7},
                  'total_iter': 300, 'warmup_iter': -1, 'pixel_opt': {'type': 'MaskedL1Loss'}},
        'logger': {'print_freq': 50, 'save_checkpoint_freq': 300, 'use_tb_logger': False},
    }
    option_file = out / 'ddp.yml'
    option_file.write_text(yaml.safe_dump(options))
    ok, seconds = run('ddp_training', [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={processes}',
                                       str(REPO / 'amsnet_basicsr' / 'train.py'), '-opt', str(option_file),
                                       '--launcher', 'pytorch'], out, timeout, cwd=out)
    saved = (out / 'experiments' / 'gpu_check_ddp' / 'models' / 'net_g_300.pth').is_file()
    return dict(ok=ok and saved, processes=processes, backend='nccl', iterations=300, seconds=seconds)


def compile_and_channels_last(path):
    """Time eager, channels_last and torch.compile forwards (fp32, bf16); the rows go to ``path`` as they come."""
    import torch

    import amsnet_basicsr.plugin  # noqa: F401
    sys.path.insert(0, str(INFERENCE_SPEED.parent))
    from inference_speed import ARCHS, STUDENT, timed

    from basicsr.archs import build_network
    device = torch.device('cuda')
    _, base, sizes = ARCHS['Restormer']
    results = []
    for label, options in (('student NAFNet-16', STUDENT), ('Restormer (paper)', dict(base, **sizes['paper']))):
        image = torch.rand(1, 3, 512, 512, device=device)
        for variant in ('eager', 'channels_last', 'compile'):
            for precision, dtype in (('fp32', None), ('bf16', torch.bfloat16)):
                torch.manual_seed(0)
                net = build_network(dict(options)).to(device).eval()
                x = image
                if variant == 'channels_last':
                    net, x = net.to(memory_format=torch.channels_last), image.to(memory_format=torch.channels_last)
                if variant == 'compile':
                    net = torch.compile(net)
                try:
                    with torch.no_grad(), torch.autocast('cuda', dtype=dtype, enabled=dtype is not None):
                        seconds = timed(lambda net=net, x=x: net(x), device, repeats=10, warmup=3)
                    results.append(dict(model=label, variant=variant, precision=precision, seconds=seconds))
                except Exception as error:  # a variant that does not work is a finding, not a crash
                    results.append(dict(model=label, variant=variant, precision=precision,
                                        error=f'{type(error).__name__}: {str(error)[:300]}'))
                print(results[-1], flush=True)
                path.write_text(json.dumps(results, indent=1))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='gpu_check', help='folder for gpu_check.json and the logs')
    parser.add_argument('--compile-only', action='store_true', help=argparse.SUPPRESS)  # step 4, in its own process
    args = parser.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print('gpu_check: error: no CUDA device', file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.compile_only:
        compile_and_channels_last(out / 'compile.json')
        return 0
    report = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                  gpus=torch.cuda.device_count())

    def save():
        (out / 'gpu_check.json').write_text(json.dumps(report, indent=1))

    report['tests_cuda'] = dict(zip(('ok', 'seconds'), run(
        'tests_cuda', [sys.executable, '-m', 'pytest', 'tests_cuda', '-q', '-p', 'no:cacheprovider'], out, 120)))
    save()
    report['ddp_training'] = ddp_training(out, 150)
    save()
    benchmark_json = out / 'benchmark.json'
    ok, _ = run('benchmark', [sys.executable, str(INFERENCE_SPEED), '--device', 'cuda', '--arch',
                              'Restormer', '--size', 'paper', '--sections', 'blocks,student', '--precisions', 'fp32',
                              'bf16', 'fp16', '--repeats', '3', '--json', str(benchmark_json)], out, 150)
    report['benchmark'] = json.loads(benchmark_json.read_text()) if ok else dict(ok=False)
    save()
    run('compile', [sys.executable, str(Path(__file__).resolve()), '--out', str(out), '--compile-only'], out, 90)
    compiled = out / 'compile.json'
    report['compile_and_channels_last'] = json.loads(compiled.read_text()) if compiled.is_file() else None
    save()
    print(f'wrote {out / "gpu_check.json"}')
    return 0 if report['tests_cuda']['ok'] and report['ddp_training']['ok'] and ok else 1


if __name__ == '__main__':
    sys.exit(main())

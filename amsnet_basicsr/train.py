"""Train AMSNet with BasicSR's pipeline: ``python amsnet_basicsr/train.py -opt options/train_AMSNet_Restormer.yml``.

Flags are BasicSR's: ``-opt``, ``--launcher none|pytorch|slurm``, ``--auto_resume``, ``--debug``, ``--force_yml``.
Several GPUs or machines (DDP; NCCL on GPUs, Gloo on CPUs)::

    torchrun --nproc_per_node=4 amsnet_basicsr/train.py -opt OPT --launcher pytorch [--auto_resume]
"""
from amsnet_basicsr.pipelines import train_main

if __name__ == '__main__':
    train_main()

"""``amsnet``: one command for everything a user runs, as subcommands.

    amsnet train-folder photos/ --out run/           train on your noisy photos (no clean image)
    amsnet denoise photos/ denoised/ -opt run/denoise.yml
    amsnet train -opt options/train_AMSNet_Restormer.yml      (BasicSR's train.py; its flags)

Each subcommand is the module that does the work, given the rest of the command line; its exit status is the
command's (:mod:`amsnet_basicsr.errors`: 0, 1 partial, 2 bad input, 130 interrupted). ``amsnet_basicsr/train.py`` and
``amsnet_basicsr/test.py`` stay as BasicSR-style entry points, and ``amsnet-<subcommand>`` console scripts remain for
the commands that had them.
"""
import importlib
import sys
from typing import Callable, NamedTuple, Optional, Sequence


class Subcommand(NamedTuple):
    module: str  # the module whose entry point runs it
    entry: str  # main(argv) -> exit status, or a BasicSR pipeline entry reading sys.argv
    summary: str


SUBCOMMANDS = {
    'train-folder': Subcommand('amsnet_basicsr.train_folder', 'main',
                               'train on a folder of your noisy photos, pick and distil a model'),
    'denoise': Subcommand('amsnet_basicsr.denoise', 'main', 'denoise photos of any size with a trained model'),
    'train': Subcommand('amsnet_basicsr.pipelines', 'train_main', "BasicSR's training pipeline (train.py -opt ...)"),
    'test': Subcommand('amsnet_basicsr.pipelines', 'test_main', "BasicSR's test pipeline (test.py -opt ...)"),
    'export': Subcommand('amsnet_basicsr.export', 'main', 'a single-pass network to ONNX'),
    'distill-prepare': Subcommand('amsnet_basicsr.distill.targets', 'main',
                                  "precompute the teacher's targets of stage distill (AMSNet-D)"),
    'prepare-sidd': Subcommand('amsnet_basicsr.data.sidd_prepare', 'main', 'crop SIDD-Medium into a training LMDB'),
    'convert-checkpoint': Subcommand('amsnet_basicsr.convert', 'main',
                                     "the authors' checkpoints to BasicSR weights"),
    'demo': Subcommand('amsnet_basicsr.demo', 'main', 'train and score on bundled photos with camera noise (CPU)'),
}
PIPELINE_ENTRIES = ('train_main', 'test_main')  # BasicSR's pipelines parse sys.argv themselves and exit


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f'  {name:<{width}}  {command.summary}' for name, command in SUBCOMMANDS.items()]
    return ('usage: amsnet <subcommand> [arguments]   (amsnet <subcommand> --help for its own)\n\n'
            'subcommands:\n' + '\n'.join(lines))


def entry_point(name: str) -> Callable:
    command = SUBCOMMANDS[name]
    return getattr(importlib.import_module(command.module), command.entry)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console script ``amsnet``: run one subcommand and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'amsnet: error: unknown subcommand {name!r}\n{usage()}', file=sys.stderr)
        return 2
    entry = entry_point(name)
    if SUBCOMMANDS[name].entry in PIPELINE_ENTRIES:
        sys.argv = [f'amsnet {name}', *rest]
        try:
            entry()
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
        return 0
    try:
        return entry(rest)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)


if __name__ == '__main__':
    sys.exit(main())

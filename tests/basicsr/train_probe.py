"""A training entry point for the tests: amsnet_basicsr/train.py plus probes (never shipped).

Run exactly like amsnet_basicsr/train.py (also under torchrun). Environment:
  PROBE_DIR            where to append samples_rank<R>.txt (every training sample path a rank read) and
                       weights_rank<R>.txt ("<iter> <sha256 of net_g> <mask generator seed>" after each save);
  PROBE_STOP_AFTER     stop every rank cleanly right after the checkpoint of this iteration (a simulated crash);
  PROBE_PAUSE_STATE    "<iter>:<seconds>": when saving <iter>.state, write PROBE_DIR/pausing and sleep that long
                       between the complete temporary file and its rename (a test SIGKILLs the process there).
"""
import hashlib
import os
import time

import amsnet_basicsr.plugin  # noqa: F401  (registers AMSNet into BasicSR)
from amsnet_basicsr import distributed, files, pipelines
from amsnet_basicsr.data.noisy_image_dataset import NoisyImageDataset
from amsnet_basicsr.models.amsnet_model import AMSNetModel

from basicsr.utils.registry import DATASET_REGISTRY

PROBE_DIR = os.environ.get('PROBE_DIR')
RANK = os.environ.get('RANK', '0')


def _append(name, line):
    if PROBE_DIR:
        with open(os.path.join(PROBE_DIR, f'{name}_rank{RANK}.txt'), 'a') as handle:
            handle.write(line + '\n')


@DATASET_REGISTRY.register()
class RecordingNoisyImageDataset(NoisyImageDataset):
    def __getitem__(self, index):
        item = super().__getitem__(index)
        _append('samples', item['lq_path'])
        return item


_save = AMSNetModel.save


def _probed_save(self, epoch, current_iter):
    _save(self, epoch, current_iter)
    state = self.get_bare_model(self.net_g).state_dict()
    digest = hashlib.sha256(b''.join(state[key].detach().cpu().numpy().tobytes() for key in sorted(state)))
    _append('weights', f'{current_iter} {digest.hexdigest()} {self.mask_generator.initial_seed()}')
    if os.environ.get('PROBE_STOP_AFTER') == str(current_iter):
        if distributed.is_distributed():
            import torch.distributed as dist
            dist.barrier()
        os._exit(0)


AMSNetModel.save = _probed_save

_publish = files._publish


def _slow_publish(temp_path, path):
    iteration, _, seconds = os.environ.get('PROBE_PAUSE_STATE', '').partition(':')
    if iteration and os.path.basename(path) == f'{iteration}.state':
        with open(os.path.join(PROBE_DIR, 'pausing'), 'w') as handle:
            handle.write(temp_path)
        time.sleep(float(seconds))
    _publish(temp_path, path)


files._publish = _slow_publish

if __name__ == '__main__':
    pipelines.train_main()

"""Saves a student-only checkpoint beside every checkpoint the CheckpointHook writes."""
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmstructkd.registry import HOOKS
from mmstructkd.utils.checkpoint import atomic_save
from mmstructkd.utils.safe_load import encode_state
from .distill_loss_weight_hook import get_distiller


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Writes ``<checkpoint stem>_student.pth`` next to each checkpoint the runner saves.

    The file holds ``state_dict`` (the student's weights, keys as in the stock model, so the
    stock student config loads it with ``strict=True``) and ``meta``. The distiller checkpoint
    itself is kept: it is what ``--resume`` needs.

    Runs after ``CheckpointHook`` (lower priority) and reads the name it saved under from the
    message hub, so ``filename_tmpl`` and ``out_dir`` of the checkpoint hook are followed.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._done: Optional[str] = None

    def before_train(self, runner) -> None:
        # After --resume the message hub still names the checkpoint resumed from: that one is
        # not new, and writing its student now would overwrite it with later weights.
        self._done = runner.message_hub.get_info('last_ckpt')

    def _maybe_save(self, runner, epochs_done: int, iters_done: int) -> None:
        last = runner.message_hub.get_info('last_ckpt')
        if last is None or last == self._done:
            return
        self._done = last
        if not is_main_process():
            return
        stem, _ = osp.splitext(last)
        out = f'{stem}_student.pth'
        student = get_distiller(runner).student
        meta = dict(epoch=epochs_done, iter=iters_done, source=osp.basename(last),
                    dataset_meta=getattr(runner.train_dataloader.dataset, 'metainfo', None))
        # Plain data (torch's default weights_only=True reads it), written atomically.
        atomic_save(dict(meta=encode_state(meta), state_dict=student.state_dict()), out)
        print_log(f'Saved the student alone to {out}', logger='current')

    # The loops count an iteration/epoch as done only after these hooks (as CheckpointHook does).
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None):
        self._maybe_save(runner, runner.epoch, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        self._maybe_save(runner, runner.epoch + 1, runner.iter)

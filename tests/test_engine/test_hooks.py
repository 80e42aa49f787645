import pytest
from mmengine.runner import Runner

from mmstructkd.engine import DistillLossWeightHook, StopDistillationHook
from tests.conftest import load_config, save_teacher


def test_schedule_values_step_and_linear():
    step = DistillLossWeightHook(dict(loss_kd=[(2, 0.5), (4, 0.0)]))
    assert [step.value_at('loss_kd', t) for t in range(6)] == [1, 1, 0.5, 0.5, 0, 0]
    assert step.value_at('loss_other', 10) == 1.0  # not scheduled
    warm = DistillLossWeightHook({'*': [(0, 0.0), (4, 1.0)]}, linear=True)
    assert [warm.value_at('any', t) for t in range(6)] == [0, 0.25, 0.5, 0.75, 1, 1]


def test_linear_schedule_by_epoch_moves_every_iteration():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub
    model = SimpleNamespace(loss_scales=dict(loss_hcl=1.0))
    runner = SimpleNamespace(model=model, epoch=1, train_dataloader=[None] * 4,
                             message_hub=MessageHub.get_instance('test_linear_by_epoch'))
    warm = DistillLossWeightHook(dict(loss_hcl=[(0, 0.0), (2, 1.0)]), by_epoch=True,
                                 linear=True)
    seen = []
    for batch_idx in range(4):  # epoch 1 of a 0 -> 1 warm-up over 2 epochs: 0.5 ... 0.875
        warm.before_train_iter(runner, batch_idx)
        seen.append(model.loss_scales['loss_hcl'])
    assert seen == [0.5, 0.625, 0.75, 0.875]
    step = DistillLossWeightHook(dict(loss_hcl=[(0, 0.0), (2, 1.0)]), by_epoch=True)
    step.before_train_iter(runner, 3)
    assert model.loss_scales['loss_hcl'] == 0.0  # a step schedule holds for the whole epoch


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match='sorted'):
        DistillLossWeightHook(dict(loss_kd=[(4, 1.0), (2, 0.0)]))
    with pytest.raises(ValueError, match='exactly one'):
        StopDistillationHook()


@pytest.mark.parametrize('hook,scales,kd_logged', [
    (dict(type='mmstructkd.StopDistillationHook', stop_iter=2), [1, 1, 0, 0], 2),
    (dict(type='mmstructkd.DistillLossWeightHook', schedule=dict(loss_kd=[(0, 0.0), (1, 2.0)]),
          linear=False), [0, 2, 2, 2], 3),
])
def test_hooks_scale_and_stop_distillation_in_a_runner(hook, scales, kd_logged, data_roots,
                                                       tmp_path):
    ckpt = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(tmp_path / 'work'),
                      **{'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': 4,
                         'train_cfg.val_interval': 100, 'param_scheduler': [],
                         'default_hooks.checkpoint.interval': 100})
    cfg.custom_hooks = [hook]
    runner = Runner.from_cfg(cfg)
    teacher_calls = []
    runner.model.teacher.register_forward_pre_hook(lambda *a: teacher_calls.append(1))
    runner.train()
    hub = runner.message_hub
    assert list(hub.get_scalar('train/distill_scale.loss_kd').data[0]) == scales
    assert len(hub.get_scalar('train/distill.loss_kd').data[0]) == kd_logged
    if hook['type'].endswith('StopDistillationHook'):
        assert len(teacher_calls) == 2  # the teacher no longer runs once distillation stops


def test_a_schedule_past_the_end_of_the_run_warns_at_before_train():
    import warnings
    from types import SimpleNamespace
    runner = SimpleNamespace(model=SimpleNamespace(loss_scales=dict(loss_kd=1.0)),
                             max_iters=100, max_epochs=12)
    with pytest.warns(UserWarning, match=r'stop_iter=100 is at or after the end of the run '
                      r'\(max_iters=100\), so distillation never stops'):
        StopDistillationHook(stop_iter=100).before_train(runner)
    with pytest.warns(UserWarning, match=r'stop_epoch=15 .*max_epochs=12'):
        StopDistillationHook(stop_epoch=15).before_train(runner)
    with pytest.warns(UserWarning, match=r'never take effect: loss_kd: \[\(200, 0.0\)\]\. '
                      r'Move them inside the run or raise train_cfg.max_iters'):
        DistillLossWeightHook(dict(loss_kd=[(0, 0.0), (50, 1.0), (200, 0.0)]),
                              linear=True).before_train(runner)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # inside the run: silent
        StopDistillationHook(stop_iter=99).before_train(runner)
        DistillLossWeightHook(dict(loss_kd=[(0, 0.0), (11, 1.0)]),
                              by_epoch=True).before_train(runner)

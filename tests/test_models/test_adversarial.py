"""Holistic distillation: the critic, its gradient penalty and the two-optimizer training."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmstructkd.models.discriminators import StructKDDiscriminator, gradient_penalty
from tests.conftest import load_config
from tests.test_tools.test_train_toolboxes import save_teacher


@pytest.mark.parametrize('size', [(7, 9), (33, 65), (16, 16), (1, 3)])
@pytest.mark.parametrize('with_image', [True, False])
def test_discriminator_scores_any_map_size(size, with_image):
    critic = StructKDDiscriminator(num_classes=5, with_image=with_image, base_channels=4)
    logits = torch.randn(2, 5, *size)
    x = critic.build_input(logits, torch.randn(2, 3, 64, 80) if with_image else None)
    assert x.shape == (2, 5 + 3 * with_image, *size)
    assert torch.allclose(x[:, :5].sum(1), torch.ones(2, *size))  # class probabilities
    assert critic(x).shape == (2, )
    with pytest.raises(ValueError, match='num_classes is 5'):
        critic.build_input(torch.randn(2, 4, *size), torch.randn(2, 3, 8, 8))


class LinearCritic(torch.nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_matches_hand_value():
    w = torch.full((1, 2, 2, 2), 0.5)  # ||w|| = sqrt(8 * 0.25) = sqrt(2)
    critic = LinearCritic(w)
    gp = gradient_penalty(critic, torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2))
    assert gp.item() == pytest.approx((2**0.5 - 1)**2, rel=1e-6)
    gp.backward()  # the penalty trains the critic: d/dw (||w|| - 1)^2 = 2(||w|| - 1) w / ||w||
    expected = 2 * (2**0.5 - 1) * w / 2**0.5
    torch.testing.assert_close(critic.w.grad, expected)


@pytest.fixture
def adversarial_runner(data_roots, tmp_path):
    def make(work='work', **options):
        ckpt = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
        defaults = {'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': 16,
                    'train_cfg.val_interval': 100, 'param_scheduler': [],
                    'train_dataloader.sampler.shuffle': False,
                    'default_hooks.checkpoint.interval': 4}
        defaults.update(options)
        cfg = load_config('tiny_seg_adversarial', data_roots['seg'], str(tmp_path / work),
                          **defaults)
        return Runner.from_cfg(cfg)

    return make


def test_each_optimizer_steps_only_its_own_side(adversarial_runner):
    runner = adversarial_runner()
    runner.train_loop  # builds the dataloader
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    model, optim = runner.model, runner.optim_wrapper
    critic_params = {id(p) for p in model.discriminator.parameters()}
    d_params = {id(p) for g in optim['discriminator'].param_groups for p in g['params']}
    g_params = {id(p) for g in optim['generator'].param_groups for p in g['params']}
    assert d_params == critic_params and not g_params & critic_params
    assert not g_params & {id(p) for p in model.teacher.parameters()}
    data = next(iter(runner.train_dataloader))

    # The student's step must not give the critic a gradient: when the critic's own step
    # starts, its parameters have none yet.
    leaked = []
    d_update = optim['discriminator'].update_params

    def checked_update(loss, **kwargs):
        leaked.extend(p.grad is not None for p in model.discriminator.parameters())
        return d_update(loss, **kwargs)

    optim['discriminator'].update_params = checked_update
    student_before = copy.deepcopy(model.student.state_dict())
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    log = model.train_step(data, optim)
    assert leaked and not any(leaked)
    assert {'distill.loss_adv', 'disc.loss_real', 'disc.loss_fake', 'disc.loss_gp',
            'disc.wasserstein', 'student.decode.loss_ce', 'distill.loss_pixel',
            'distill.loss_pair'} <= set(log)
    assert any(not torch.equal(v, student_before[k])
               for k, v in model.student.state_dict().items())
    # Student learning rate 0: the critic's step moves the critic, never the student.
    for group in optim['generator'].param_groups:
        group['lr'] = 0.0
        group['weight_decay'] = 0.0
    optim['generator'].optimizer.state.clear()  # no momentum carried over
    student_before = copy.deepcopy(model.student.state_dict())
    critic_before = copy.deepcopy(model.discriminator.state_dict())
    model.train_step(data, optim)
    for k, v in model.student.state_dict().items():
        if 'running' not in k and 'num_batches' not in k:
            assert torch.equal(v, student_before[k]), k
    assert any(not torch.equal(v, critic_before[k])
               for k, v in model.discriminator.state_dict().items())
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


@pytest.mark.parametrize('teacher_strides', [None, (1, 2, 1, 1)])
def test_adversarial_training_lowers_the_task_loss_and_keeps_the_critic_finite(
        teacher_strides, adversarial_runner):
    # With strides (1, 2, 1, 1) the teacher's score maps are 4x larger than the student's:
    # the critic must see both at one size.
    options = {'model.teacher.backbone.strides': teacher_strides} if teacher_strides else {}
    runner = adversarial_runner(**options)
    runner.train()
    hub = runner.message_hub
    task = hub.get_scalar('train/student.decode.loss_ce').data[0]
    assert task[-4:].mean() < task[:4].mean(), task
    for key in ('disc.loss', 'disc.wasserstein', 'disc.loss_gp', 'distill.loss_adv'):
        assert np.all(np.isfinite(hub.get_scalar(f'train/{key}').data[0])), key


def test_resume_restores_the_critic_and_both_optimizers(adversarial_runner, tmp_path):
    first = adversarial_runner(work='first', **{'train_cfg.max_iters': 4})
    first.train()
    ckpt_path = osp.join(str(tmp_path), 'first', 'iter_4.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert set(ckpt['optimizer']) == {'generator', 'discriminator'}
    resumed = adversarial_runner(work='resumed', **{'train_cfg.max_iters': 4})
    resumed._resume, resumed._load_from = True, ckpt_path
    resumed.train()  # loads, then has nothing left to train
    assert resumed.iter == 4
    state = resumed.model.state_dict()
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(state[k], v), k
    restored = resumed.optim_wrapper.state_dict()
    for key in ('generator', 'discriminator'):
        saved, now = ckpt['optimizer'][key]['state'], restored[key]['state']
        assert saved.keys() == now.keys() and saved
        for idx in saved:
            for name, value in saved[idx].items():
                assert torch.equal(torch.as_tensor(now[idx][name]), torch.as_tensor(value))

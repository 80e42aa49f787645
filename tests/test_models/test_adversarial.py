"""Holistic distillation: the critic, its gradient penalty and the two-optimizer training."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

from mmstructkd.engine import SafeRunner
from mmstructkd.models.discriminators import (SpectralNormConv2d, StructKDDiscriminator,
                                              gradient_penalty)
from mmstructkd.utils import safe_load
from tests.conftest import load_config, save_teacher


@pytest.mark.parametrize('size', [(7, 9), (33, 65), (16, 16), (1, 3)])
@pytest.mark.parametrize('with_image', [True, False])
@pytest.mark.parametrize('last_layer', ['conv4x4', 'conv3x3'])
def test_discriminator_scores_any_map_size(size, with_image, last_layer):
    critic = StructKDDiscriminator(num_classes=5, with_image=with_image, base_channels=4,
                                   last_layer=last_layer)
    logits = torch.randn(2, 5, *size)
    x = critic.build_input(logits, torch.randn(2, 3, 64, 80) if with_image else None)
    assert x.shape == (2, 5 + 3 * with_image, *size)
    assert torch.allclose(x[:, :5].sum(1), torch.ones(2, *size))  # class probabilities
    scores = critic(x)
    assert scores.dim() == 4 and scores.shape[:2] == (2, 1)
    with pytest.raises(ValueError, match='num_classes is 5'):
        critic.build_input(torch.randn(2, 4, *size), torch.randn(2, 3, 8, 8))


def test_discriminator_official_layers():
    # The official critic: four 4x4 stride-2 spectral-normalised convs, then a 4x4 conv without
    # padding and without spectral norm; a 65x65 score map (PSPNet at 1/8 of 512) gives one
    # score per image.
    critic = StructKDDiscriminator(num_classes=19, with_image=False, base_channels=8,
                                   input_transform='batchnorm')
    convs = [m for m in critic.body if isinstance(m, torch.nn.Conv2d)]
    assert [type(m) for m in convs] == [SpectralNormConv2d] * 4
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1)
               for m in convs)
    assert [m.out_channels for m in convs] == [8, 16, 32, 64]  # base_channels x 1, 2, 4, 8
    # conv, LeakyReLU(0.1) each; self-attention after the third and the fourth
    kinds = [type(m).__name__ for m in critic.body]
    assert kinds == ['SpectralNormConv2d', 'LeakyReLU'] * 2 + [
        'SpectralNormConv2d', 'LeakyReLU', 'SelfAttention'] * 2
    assert all(m.negative_slope == 0.1 for m in critic.body
               if isinstance(m, torch.nn.LeakyReLU))
    assert type(critic.last) is torch.nn.Conv2d
    assert critic.last.kernel_size == (4, 4) and critic.last.padding == (0, 0)
    assert critic(torch.randn(2, 19, 65, 65)).shape == (2, 1, 1, 1)
    # The official input BatchNorm normalises the raw logits inside the critic.
    assert isinstance(critic.input_norm, torch.nn.BatchNorm2d)
    logits = torch.randn(2, 19, 9, 9)
    torch.testing.assert_close(critic.build_input(logits), logits)


def test_spectral_norm_power_iteration_is_v_then_u_in_every_forward():
    torch.manual_seed(0)
    conv = SpectralNormConv2d(2, 3, 2, bias=False)
    conv.eval()  # the official spectral norm iterates in evaluation too
    w = conv.weight.detach().flatten(1).double()  # (3, 8)
    u0 = conv.weight_u.double()
    x = torch.randn(1, 2, 2, 2)
    out = conv(x)
    # By hand: v = W^T u / (||W^T u|| + 1e-12), then u = W v / (||W v|| + 1e-12),
    # sigma = u . W v.
    v = w.t() @ u0
    v = v / (v.norm() + 1e-12)
    u = w @ v
    u = u / (u.norm() + 1e-12)
    sigma = float(u @ (w @ v))
    torch.testing.assert_close(conv.weight_v.double(), v)
    torch.testing.assert_close(conv.weight_u.double(), u)
    expected = (x.flatten().double() @ (w / sigma).t()).float()  # a 2x2 kernel on a 2x2 map
    torch.testing.assert_close(out.flatten(), expected)
    second_u = conv.weight_u.clone()
    conv(x)
    assert not torch.equal(conv.weight_u, second_u)  # one iteration per call
    # The gradient flows through W and through sigma = u . W v (u, v held fixed): compare with
    # autograd on that closed form, u and v advanced as the call advances them.
    conv.zero_grad()
    u_now = conv.weight_u.clone()
    w_var = conv.weight.detach().clone().requires_grad_(True)
    conv(x).sum().backward()
    v_next = w_var.detach().flatten(1).t() @ u_now
    v_next = v_next / (v_next.norm() + 1e-12)
    u_next = w_var.detach().flatten(1) @ v_next
    u_next = u_next / (u_next.norm() + 1e-12)
    sigma_var = u_next @ (w_var.flatten(1) @ v_next)
    (x.flatten() @ (w_var.flatten(1) / sigma_var).t()).sum().backward()
    torch.testing.assert_close(conv.weight.grad, w_var.grad)


class LinearCritic(torch.nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


class LinearMapCritic(torch.nn.Module):
    """A score map D(x)[p] = w[p] * x[p] (one channel, P positions)."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return x * self.w


def test_gradient_penalty_matches_hand_value():
    w = torch.full((1, 2, 2, 2), 0.5)  # ||w|| = sqrt(8 * 0.25) = sqrt(2)
    critic = LinearCritic(w)
    gp = gradient_penalty(critic, torch.randn(3, 2, 2, 2), torch.randn(3, 2, 2, 2))
    assert gp.item() == pytest.approx((2**0.5 - 1)**2, rel=1e-6)
    gp.backward()  # the penalty trains the critic: d/dw (||w|| - 1)^2 = 2(||w|| - 1) w / ||w||
    expected = 2 * (2**0.5 - 1) * w / 2**0.5
    torch.testing.assert_close(critic.w.grad, expected)


def test_gradient_penalty_of_the_sum_of_the_score_map():
    # A 3x5 score map with w = 0.3 everywhere: the gradient of the sum has norm
    # 0.3 * sqrt(15) (official), the gradient of the per-image mean 0.3 * sqrt(15) / 15.
    w = torch.full((1, 1, 3, 5), 0.3)
    real, fake = torch.randn(2, 1, 3, 5), torch.randn(2, 1, 3, 5)
    official = gradient_penalty(LinearMapCritic(w), real, fake, score='sum')
    assert official.item() == pytest.approx((0.3 * 15**0.5 - 1)**2, rel=1e-5)
    mean = gradient_penalty(LinearMapCritic(w), real, fake, score='mean')
    assert mean.item() == pytest.approx((0.3 * 15**0.5 / 15 - 1)**2, rel=1e-6)
    with pytest.raises(ValueError, match='score'):
        gradient_penalty(LinearMapCritic(w), real, fake, score='max')


def test_gradient_penalty_mixing_weights_come_from_the_given_generator():
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.sum(dim=(1, 2, 3))

    real, fake = torch.ones(3, 1, 1, 1), torch.zeros(3, 1, 1, 1)
    gen = torch.Generator().manual_seed(5)
    expected_alpha = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(123)
    global_before = torch.get_rng_state()
    gradient_penalty(Recording(), real, fake, generator=gen)
    torch.testing.assert_close(seen[0], expected_alpha)  # x_hat = alpha * 1 + (1 - alpha) * 0
    assert torch.equal(torch.get_rng_state(), global_before)  # the global RNG is untouched


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
        return SafeRunner.from_cfg(cfg)

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
    ckpt = safe_load(ckpt_path)
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


def test_critic_losses_are_scaled_by_lambda_d_penalty_included(adversarial_runner):
    # Official: critic loss 0.1 * (-D(T) + D(S)) + 0.1 * 10 * GP (lambda_d = 0.1 multiplies
    # the penalty too). A linear score-map critic makes every term a hand value.
    model = adversarial_runner().model
    assert model.critic_loss_weight == 0.1 and model.gp_score == 'sum'
    w = torch.full((1, 1, 3, 5), 0.3)
    model.discriminator = LinearMapCritic(w)
    real, fake = torch.randn(2, 1, 3, 5), torch.randn(2, 1, 3, 5)
    losses = model.discriminator_loss(real, fake)
    d_real, d_fake = float((real * w).mean()), float((fake * w).mean())
    assert losses['disc.loss_real'].item() == pytest.approx(-0.1 * d_real, rel=1e-5)
    assert losses['disc.loss_fake'].item() == pytest.approx(0.1 * d_fake, rel=1e-5)
    assert losses['disc.loss_gp'].item() == pytest.approx(
        0.1 * 10 * (0.3 * 15**0.5 - 1)**2, rel=1e-5)
    assert losses['disc.wasserstein'].item() == pytest.approx(d_real - d_fake, rel=1e-5)


def test_penalty_generator_is_seeded_per_rank_and_its_state_round_trips(
        adversarial_runner, monkeypatch):
    from mmstructkd.models.distillers import adversarial_distiller
    model = adversarial_runner(**{'randomness.seed': 7}).model
    assert model.gp_generator.initial_seed() == 7
    state = model.rng_state_dict()
    first = torch.rand(4, generator=model.gp_generator)
    model.load_rng_state_dict(state)
    torch.testing.assert_close(torch.rand(4, generator=model.gp_generator), first)
    with pytest.raises(KeyError, match='gp_generator'):
        model.load_rng_state_dict({})
    # Another rank, the same run seed: another stream of mixing weights.
    monkeypatch.setattr(adversarial_distiller, 'get_rank', lambda: 1)
    other = adversarial_runner(work='rank1', **{'randomness.seed': 7}).model
    assert other.gp_generator.initial_seed() == 7 + 1_000_003


def test_the_student_step_returns_the_critic_batch_unless_it_did_not_distil(adversarial_runner):
    runner = adversarial_runner(**{'model.skip_nonfinite': True})
    model = runner.model.train()
    batch = next(iter(runner.build_dataloader(runner._train_dataloader)))
    data = model.data_preprocessor(batch, True)
    losses, critic = model(**data, mode='generator')
    assert set(critic) == {'real', 'fake'} and critic['real'].shape == critic['fake'].shape
    assert not critic['real'].requires_grad and not critic['fake'].requires_grad
    assert 'distill.loss_adv' in losses
    # A non-finite distillation loss, skipped: the step distils nothing, the critic gets no batch.
    pixel = model.distill_losses['loss_pixel']
    real_forward = pixel.forward
    pixel.forward = lambda **kwargs: real_forward(**kwargs) * float('nan')
    losses, critic = model(**data, mode='generator')
    assert critic is None and not any(k.startswith('distill.') for k in losses), sorted(losses)


def test_the_students_adversarial_term_is_minus_lambda_ho_mean_score_and_reaches_the_student(
        adversarial_runner):
    """distill.loss_adv = -lambda_ho * mean D(fake): value and sign against a linear critic
    (D(x) = sum_c w_c x_c per position), and its gradient alone reaches the student's
    classifier (the map the critic scores)."""
    runner = adversarial_runner()
    model = runner.model.train()
    assert model.adv_loss_weight == 0.1
    batch = next(iter(runner.build_dataloader(runner._train_dataloader)))
    data = model.data_preprocessor(batch, True)
    _, critic = model(**data, mode='generator')  # the critic's input channels
    w = torch.linspace(-1.0, 2.0, critic['fake'].shape[1]).view(1, -1, 1, 1)
    model.discriminator.forward = lambda x: (x * w).sum(1, keepdim=True)
    losses, critic = model(**data, mode='generator')
    fake = critic['fake']
    expected = -0.1 * float((fake * w).sum(1).mean())
    assert losses['distill.loss_adv'].item() == pytest.approx(expected, rel=1e-5)
    assert expected != 0
    conv_seg = model.student.decode_head.conv_seg.weight
    grad, = torch.autograd.grad(losses['distill.loss_adv'], [conv_seg], retain_graph=True)
    assert grad.abs().sum() > 0

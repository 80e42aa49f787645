"""Holistic (adversarial) distillation: a single-teacher distiller plus a WGAN-GP critic."""
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.dist import get_rank
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.structures import BaseDataElement
from torch import Tensor

from mmstructkd.models.discriminators.structkd_discriminator import gradient_penalty
from mmstructkd.models.losses.utils import resize_to
from mmstructkd.models.recorders.base_recorder import get_submodule_or_raise
from mmstructkd.registry import MODELS, build_own
from .single_teacher_distiller import (SingleTeacherDistiller, StepRecords, _device_type,
                                       _to_fp32)

#: The two optimizer wrappers the adversarial train_step needs.
OPTIM_KEYS = ('generator', 'discriminator')


@MODELS.register_module()
class AdversarialDistiller(SingleTeacherDistiller):
    """Adds holistic distillation (Liu et al., TPAMI 2020) to :class:`SingleTeacherDistiller`.

    The student is the generator: besides its task and distillation losses it gets
    ``distill.loss_adv = -adv_loss_weight * mean D(student map [+ image])``; the step's
    ``critic`` record keeps the critic's inputs, detached (``real``: the teacher's map,
    ``fake``: the student's). After each student step the critic ``D`` takes ``d_steps`` steps
    of the WGAN-GP loss on them, teacher = real, student = fake:
    ``disc.loss_real = -mean D(real)``, ``disc.loss_fake = mean D(fake)``,
    ``disc.loss_gp = gp_weight * E(||grad D(x_hat)|| - 1)^2``; ``disc.wasserstein`` logs the
    critic's estimate ``mean D(real) - mean D(fake)``. The critic's losses are multiplied by
    ``critic_loss_weight`` (the official code multiplies them, penalty included, by
    lambda_d = 0.1).

    The penalty's mixing weights come from the distiller's own generator, seeded from the run's
    seed and the process rank (so DDP ranks draw different weights) and saved in checkpoints
    through :meth:`rng_state_dict`, so a resumed run draws what the uninterrupted one would.

    Training needs two optimizer wrappers, ``generator`` (everything trainable but the critic)
    and ``discriminator``: ``optim_wrapper=dict(constructor='mmstructkd.
    AdversarialOptimWrapperConstructor', generator=dict(...), discriminator=dict(...))``.
    Both, and the critic's weights, are saved in checkpoints and restored by ``--resume``.
    Under DDP use ``model_wrapper_cfg=dict(type='mmstructkd.DistillerDDP',
    find_unused_parameters=True)``. Losses and the critic run in fp32 under ``--amp``.

    Args:
        discriminator (dict): Critic config, e.g. ``dict(type='StructKDDiscriminator')``.
            Without ``num_classes`` (or with None) the critic gets the channel count of the
            teacher's map of ``adversarial_mapping['teacher']`` (the output channels of the
            recorded module, or of the connector that maps it), so it follows the teacher's
            class count.
        adversarial_mapping (dict): Where the critic's inputs come from:
            ``dict(student=dict(from_student=True, recorder='logits'),
            teacher=dict(from_student=False, recorder='logits'))`` (mapping format of
            ``loss_forward_mappings``).
        adv_loss_weight (float): lambda_ho, weight of the student's adversarial term (the paper
            uses 0.1). Defaults to 0.1.
        gp_weight (float): lambda of the gradient penalty. Defaults to 10.
        critic_loss_weight (float): Multiplies the critic's whole loss (Wasserstein terms and
            penalty). The official code uses lambda_d = 0.1. Defaults to 1.0.
        gp_score (str): What the penalty differentiates: the ``'sum'`` of the critic's score
            map (official) or its ``'mean'`` per image. See :func:`gradient_penalty`.
            Defaults to ``'sum'``.
        d_steps (int): Critic steps per student step. Defaults to 1.
        **kwargs: Arguments of :class:`SingleTeacherDistiller`.
    """

    def __init__(self, discriminator: dict, adversarial_mapping: Dict[str, dict],
                 adv_loss_weight: float = 0.1, gp_weight: float = 10.0,
                 critic_loss_weight: float = 1.0, gp_score: str = 'sum', d_steps: int = 1,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if set(adversarial_mapping) != {'student', 'teacher'}:
            raise ValueError('adversarial_mapping needs exactly the keys "student" and '
                             f'"teacher", got {sorted(adversarial_mapping)}')
        for key, spec in adversarial_mapping.items():
            self._check_mapping(f'adversarial_mapping["{key}"]', spec)
        discriminator = dict(discriminator)
        if discriminator.get('num_classes') is None:
            discriminator['num_classes'] = self._teacher_map_channels(
                adversarial_mapping['teacher'])
        self.discriminator = build_own(MODELS, discriminator)
        if d_steps < 1:
            raise ValueError(f'd_steps must be >= 1, got {d_steps}')
        for name, value in (('adv_loss_weight', adv_loss_weight), ('gp_weight', gp_weight),
                            ('critic_loss_weight', critic_loss_weight)):
            if value < 0:
                raise ValueError(f'AdversarialDistiller: {name} must be >= 0, got {value}')
        if gp_score not in ('sum', 'mean'):
            raise ValueError(f'AdversarialDistiller: gp_score must be "sum" (official) or '
                             f'"mean", got {gp_score!r}')
        self.adversarial_mapping = adversarial_mapping
        self.adv_loss_weight = adv_loss_weight
        self.gp_weight = gp_weight
        self.critic_loss_weight = critic_loss_weight
        self.gp_score = gp_score
        self.d_steps = d_steps
        # The penalty's own generator: seeded from the run's seed (the Runner seeds torch
        # before it builds the model) and the rank, so ranks draw different mixing weights.
        self.gp_generator = torch.Generator()
        self.gp_generator.manual_seed((torch.initial_seed() + 1_000_003 * get_rank()) % 2**63)
        self.loss_scales['loss_adv'] = 1.0

    def _teacher_map_channels(self, spec: dict) -> int:
        """Channels of the teacher map the critic judges, read off the module that makes it:
        the mapping's connector, or the module (or the owner of the method) its recorder
        records. Needs no forward pass, so the critic's parameters exist before the Runner
        builds the optimizers."""
        where = f'adversarial_mapping["teacher"] (recorder {spec.get("recorder")!r})'
        if spec.get('connector') is not None:
            module, what = self.connectors[spec['connector']], f'connector "{spec["connector"]}"'
        else:
            names = spec['recorder']
            if isinstance(names, (list, tuple)):
                raise ValueError(f'{where}: the critic judges one map, not a list of recorders.')
            recorder = self.teacher_recorders.recorders[names]
            module = getattr(recorder, '_owner', None)  # a method recorder's module
            if module is None:
                module = get_submodule_or_raise(self.teacher, recorder.source)
            what = f'{type(module).__name__} at "{recorder.source}"'
            if type(recorder).__name__.endswith('InputsRecorder'):
                module = None  # inputs: the module's own width says nothing about them
        channels = None
        for attr in ('out_channels', 'out_features', 'num_classes'):
            value = getattr(module, attr, None) if module is not None else None
            if isinstance(value, int):
                channels = value
                break
        if channels is None:
            raise ValueError(
                f'AdversarialDistiller: cannot tell the channels of the teacher map of {where}: '
                f'{what} has no out_channels. Give them as discriminator=dict(..., '
                'num_classes=<channels of that map>).')
        return channels

    @property
    def distillation_active(self) -> bool:
        return any(v != 0 for v in self.loss_scales.values())

    # ------------------------------------------------------------------ student side
    def _distill_losses(self, inputs: Tensor, records: StepRecords, fetched: Dict[tuple, Any],
                        used_connectors: set) -> Dict[str, Tensor]:
        """The distillation losses plus ``loss_adv``; the critic's inputs of this step become
        the ``critic`` record (``real``, ``fake``: detached critic inputs)."""
        losses = super()._distill_losses(inputs, records, fetched, used_connectors)
        scale = self.loss_scales['loss_adv']
        if scale == 0:
            return losses
        maps = {k: _to_fp32(self._fetch(spec, records, fetched))
                for k, spec in self.adversarial_mapping.items()}
        used_connectors.update(spec.get('connector') for spec in self.adversarial_mapping.values())
        image = _to_fp32(inputs).detach()
        # The critic compares maps of one size: the student's is resized to the teacher's.
        student_map, teacher_map = resize_to(maps['student'], maps['teacher'].detach(),
                                             'AdversarialDistiller')
        with torch.autocast(device_type=_device_type(inputs), enabled=False):
            fake = self.discriminator.build_input(student_map, image)
            real = self.discriminator.build_input(teacher_map, image)
            # The critic is frozen here (see train_step): the gradient reaches the student only.
            losses['distill.loss_adv'] = -self.discriminator(fake).mean() * \
                self.adv_loss_weight * scale
        records.stages['critic'] = dict(real=real.detach(), fake=fake.detach())
        return losses

    # ------------------------------------------------------------------ critic side
    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Dict[str, Tensor]:
        """WGAN-GP critic losses on detached critic inputs (teacher = real, student = fake)."""
        weight = self.critic_loss_weight
        with torch.autocast(device_type=real.device.type, enabled=False):
            real, fake = real.float(), fake.float()
            d_real = self.discriminator(real).mean()
            d_fake = self.discriminator(fake).mean()
            gp = gradient_penalty(self.discriminator, real, fake, self.gp_generator,
                                  self.gp_score)
        return {
            'disc.loss_real': -weight * d_real,
            'disc.loss_fake': weight * d_fake,
            'disc.loss_gp': weight * self.gp_weight * gp,
            'disc.wasserstein': (d_real - d_fake).detach(),
        }

    # ------------------------------------------------------------------ resume
    def rng_state_dict(self) -> Dict[str, Tensor]:
        """The state of the penalty's generator (saved in checkpoints for an exact resume)."""
        return {'gp_generator': self.gp_generator.get_state()}

    def load_rng_state_dict(self, state: Dict[str, Tensor]) -> None:
        """Restore what :meth:`rng_state_dict` returned."""
        if 'gp_generator' not in state:
            raise KeyError('AdversarialDistiller.load_rng_state_dict: no "gp_generator" state '
                           f'(keys: {sorted(state)}); was it saved by rng_state_dict()?')
        self.gp_generator.set_state(state['gp_generator'])

    def forward(self, inputs: Union[Tensor, dict], data_samples: Optional[List[
            BaseDataElement]] = None, mode: str = 'tensor') -> Any:
        """Adds two modes. ``'generator'``: the student's step, returning ``(losses, critic)``
        with ``critic`` the step's ``dict(real=..., fake=...)`` (None when it did not
        distil). ``'discriminator'``: the critic's losses; ``inputs`` is that dict.

        Routing both steps through ``forward`` lets the DDP wrapper synchronise their gradients
        like any other forward pass.
        """
        if mode == 'generator':
            result = self.distill_step(inputs, data_samples)
            critic = result.records.stages.get('critic') if result.distilled else None
            return result.losses, critic
        if mode == 'discriminator':
            return self.discriminator_loss(inputs['real'], inputs['fake'])
        return super().forward(inputs, data_samples, mode)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict,
                   forward: Optional[Any] = None) -> Dict[str, Tensor]:
        """One student (generator) step, then ``d_steps`` critic steps.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapperDict): With ``generator`` and ``discriminator``.
            forward (callable, optional): What runs the forwards; the DDP wrapper passes
                itself. Defaults to this model.

        Returns:
            dict[str, Tensor]: Everything to log.
        """
        if not isinstance(optim_wrapper, OptimWrapperDict) or \
                set(optim_wrapper.keys()) != set(OPTIM_KEYS):
            raise TypeError(
                'AdversarialDistiller needs two optimizers: optim_wrapper=dict(constructor='
                '"mmstructkd.AdversarialOptimWrapperConstructor", generator=dict(...), '
                f'discriminator=dict(...)); got {type(optim_wrapper).__name__}'
                + (f' with {list(optim_wrapper.keys())}'
                   if isinstance(optim_wrapper, OptimWrapperDict) else ''))
        forward = forward or self
        g_wrapper: OptimWrapper = optim_wrapper['generator']
        d_wrapper: OptimWrapper = optim_wrapper['discriminator']
        self.discriminator.requires_grad_(False)
        try:
            with g_wrapper.optim_context(forward):
                data = self.data_preprocessor(data, True)
                losses, critic = forward(**data, mode='generator')
            parsed, log_vars = self.parse_losses(losses)
            g_wrapper.update_params(parsed)
        finally:
            self.discriminator.requires_grad_(True)
        if critic is not None:
            real, fake = critic['real'], critic['fake']
            for _ in range(self.d_steps):
                with d_wrapper.optim_context(forward):
                    d_losses = forward(dict(real=real, fake=fake), mode='discriminator')
                d_parsed, d_log = self.parse_losses(d_losses)
                d_wrapper.update_params(d_parsed)
            log_vars.update({k: v for k, v in d_log.items() if k != 'loss'})
            log_vars['disc.loss'] = d_log['loss']
        return log_vars

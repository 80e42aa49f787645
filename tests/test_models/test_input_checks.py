"""Bad input that used to pass silently: each gets an error or a warning naming the fix."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper

from tests.conftest import build_tiny_distiller as build
from tests.conftest import seg_inputs


def test_a_negative_loss_weight_is_refused():
    with pytest.raises(ValueError, match=r'distill_losses\["loss_kd"\] \(KDLoss\) has '
                       r'loss_weight=-1.0: a negative weight maximises the distance'):
        build(distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=-1.0),
                                  loss_feat=dict(type='FeatureMSELoss', loss_weight=0.1)))
    build(distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=0.0),
                              loss_feat=dict(type='FeatureMSELoss', loss_weight=0.1)))


def nan_kd(model):
    real = model.distill_losses['loss_kd'].forward

    def forward(**kwargs):
        return real(**kwargs) * float('nan')

    model.distill_losses['loss_kd'].forward = forward


def test_a_non_finite_distillation_loss_is_an_error_naming_it():
    model = build()
    nan_kd(model)
    data = model.data_preprocessor(seg_inputs(), True)
    with pytest.raises(FloatingPointError, match=r'distillation loss distill\.loss_kd is not '
                       r'finite.*skip_nonfinite=True'):
        model(**data, mode='loss')


def test_skip_nonfinite_drops_the_steps_distillation_losses_with_a_warning():
    model = build(skip_nonfinite=True)
    nan_kd(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    connector = {k: v.clone() for k, v in model.connectors.state_dict().items()}
    before = {k: v.clone() for k, v in model.student.state_dict().items()}
    log = model.train_step(seg_inputs(), optim)
    assert model.nonfinite_steps == 1
    assert not any(k.startswith('distill.') for k in log), sorted(log)
    assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in log.values())
    assert any(not torch.equal(v, before[k]) for k, v in model.student.state_dict().items()
               if v.is_floating_point())  # the task losses still trained the student
    for k, v in model.connectors.state_dict().items():  # zero gradient: unchanged, finite
        assert torch.equal(v, connector[k]), k

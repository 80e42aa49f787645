import pytest
import torch
from torch import nn

from mmstructkd.models.recorders import (MethodOutputsRecorder, ModuleInputsRecorder,
                                         ModuleOutputsRecorder, RecorderManager)


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        self.shared = nn.Conv2d(4, 2, 1)

    def head(self, x):
        return x.mean()

    def forward(self, x):
        f = self.backbone(x)
        outs = [self.shared(f), self.shared(f * 2)]  # a shared head: called twice
        return self.head(outs[0]), outs


def test_module_outputs_and_inputs_are_recorded_per_call_and_reset():
    model = Toy()
    manager = RecorderManager(dict(
        feat=dict(type='ModuleOutputs', source='backbone'),
        shared_in=dict(type='ModuleInputs', source='shared'),
        shared_out=dict(type='ModuleOutputs', source='shared'),
        head=dict(type='MethodOutputs', source='head')))
    manager.prepare(model)
    x = torch.randn(1, 3, 2, 2)
    with manager.recording():
        _, outs = model(x)
    feat = model.backbone(x)
    assert torch.allclose(manager.get('feat'), feat)
    assert torch.allclose(manager.get('shared_in', record_idx=1, data_idx=0), feat * 2)
    assert [o.shape for o in manager.get('shared_out', record_idx='all')] == [(1, 2, 2, 2)] * 2
    assert torch.allclose(manager.get('head'), outs[0].mean())
    with pytest.raises(RuntimeError, match='called 2 times'):
        manager.get('shared_out')
    # A new recording starts empty, and nothing is recorded outside of it.
    with manager.recording():
        pass
    model(x)
    with pytest.raises(RuntimeError, match='recorded nothing'):
        manager.get('feat')


def test_remove_restores_the_model():
    model = Toy()
    recorders = [ModuleOutputsRecorder('backbone'), ModuleInputsRecorder('shared'),
                 MethodOutputsRecorder('head')]
    for r in recorders:
        r.prepare(model)
        r.recording = True
    model(torch.randn(1, 3, 2, 2))
    for r in recorders:
        r.remove()
        r.reset()
    assert 'head' not in vars(model)
    model(torch.randn(1, 3, 2, 2))
    assert all(r.data_buffer == [] for r in recorders)


def test_bad_source_lists_close_matches():
    manager = RecorderManager(dict(feat=dict(type='ModuleOutputs', source='backbon')))
    with pytest.raises(ValueError, match=r'recorder "feat".*backbon.*Close matches.*backbone'):
        manager.prepare(Toy())
    with pytest.raises(ValueError, match='has no method "nope"'):
        MethodOutputsRecorder('backbone.nope').prepare(Toy())
    with pytest.raises(TypeError, match='"type" key'):
        RecorderManager(dict(feat='backbone'))


def test_data_idx_and_record_idx_errors_are_clear():
    r = ModuleOutputsRecorder('backbone')
    r.prepare(Toy())
    r.recording = True
    r.data_buffer.append(torch.zeros(1))
    with pytest.raises(TypeError, match='not a tuple/list'):
        r.get_record_data(data_idx=0)
    with pytest.raises(IndexError, match='record_idx=3'):
        r.get_record_data(record_idx=3)

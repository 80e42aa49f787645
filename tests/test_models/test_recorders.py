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
    # each recorded while attached (the shared module: twice)
    assert [len(r.data_buffer) for r in recorders] == [1, 2, 1]
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


class Residual(nn.Module):
    """A residual block as mmpretrain's BasicBlock writes it: one in-place ReLU module called
    twice, the norm layer's output added to in place."""

    def __init__(self):
        super().__init__()
        self.norm = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.norm(x * 1.0))
        out = self.norm(out - 1.0)
        out += x
        return self.relu(out)


def test_a_record_changed_in_place_raises_and_clone_keeps_what_the_source_made():
    x = torch.tensor([[-2.0, 0.5, 3.0]], requires_grad=True)
    # before the last ReLU: relu(x) - 1 + x = [-3, 0, 5]
    pre_activation = torch.tensor([[-3.0, 0.0, 5.0]])
    for clone in (False, True):
        model = Residual()
        manager = RecorderManager(dict(
            pre=dict(type='ModuleInputs', source='relu', clone=clone),
            norm=dict(type='ModuleOutputs', source='norm', clone=clone)))
        manager.prepare(model)
        with manager.recording():
            y = model(x)
        if not clone:  # the in-place ReLU and `out += x` changed both records
            for name, source in (('pre', 'relu'), ('norm', 'norm')):
                with pytest.raises(RuntimeError, match=f'recorded at "{source}".*clone=True'):
                    manager.get(name, record_idx=-1)
            with pytest.raises(RuntimeError, match='modified in place'):
                manager.buffers()
            continue
        pre = manager.get('pre', record_idx=-1, data_idx=0)
        assert torch.equal(pre, pre_activation)
        assert torch.equal(manager.get('norm', record_idx=-1), pre_activation - x)
        assert torch.equal(y, pre_activation.clamp(min=0))
        # the copy is in the graph: d(sum pre)/dx = relu'(x) + 1
        pre.sum().backward()
        assert torch.equal(x.grad, torch.tensor([[1.0, 2.0, 2.0]]))


def test_records_not_changed_in_place_are_not_copied():
    model = Toy()
    manager = RecorderManager(dict(feat=dict(type='ModuleOutputs', source='backbone.0')))
    manager.prepare(model)
    produced = []
    model.backbone[0].register_forward_hook(lambda m, i, o: produced.append(o))
    with manager.recording():
        model(torch.randn(1, 3, 2, 2))
    # backbone.1 is a ReLU that is not in place: the record is the conv's own output tensor,
    # not a copy, and reading it passes the check
    assert manager.get('feat') is produced[0]
    with pytest.raises(TypeError, match='clone must be True or False'):
        ModuleOutputsRecorder('backbone', clone='yes')

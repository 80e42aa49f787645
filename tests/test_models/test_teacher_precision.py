"""The cheap teacher (``teacher_runtime``): bf16 autocast, denormals, channels_last, compile.

Tolerance of bf16 against fp32: bf16 keeps 8 significant bits (unit roundoff 2^-9 = 0.2%); the
tiny teacher has about 20 layers, so every recorded tensor must be within 2% of its largest
fp32 magnitude (measured: 0.3% on the logits, 0.6% on the layer4 feature) and argmax over the
classes must agree on at least 95% of the pixels (measured: 100%).
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmstructkd.models.distillers import teacher_runtime as runtime_module
from mmstructkd.models.distillers.teacher_runtime import (flushed_thread_fraction, output_deviation,
                                                          set_flush_denormal_all_threads)
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR
from tests.conftest import build_tiny_distiller as build
from tests.conftest import seg_inputs

REL_TOL = 0.02
ARGMAX_MIN = 0.95


def capture(module, store, key):
    """Keep every output of ``module`` in ``store[key]`` (a list)."""
    return module.register_forward_hook(lambda m, i, o: store.setdefault(key, []).append(o))


def capture_loss_inputs(model):
    """``{loss name: [kwargs of each call]}`` of the distiller's distillation losses."""
    seen = {}
    for name, loss in model.distill_losses.items():
        loss.register_forward_pre_hook(
            lambda m, args, kwargs, name=name: seen.setdefault(name, []).append(kwargs),
            with_kwargs=True)
    return seen


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(runtime_module, 'print_log', lambda msg, *a, **k: lines.append(msg))
    return lines


@pytest.fixture
def no_flush():
    """Every test starts and ends with IEEE denormals on all threads."""
    set_flush_denormal_all_threads(False)
    yield
    set_flush_denormal_all_threads(False)


def test_bf16_teacher_outputs_are_close_to_fp32_and_the_deviation_is_reported(no_flush):
    fp32 = build()
    bf16 = build(teacher_runtime=dict(precision='bf16'))
    bf16.load_state_dict(fp32.state_dict())
    data = fp32.data_preprocessor(seg_inputs(), True)
    outs = {}
    for key, model in (('fp32', fp32), ('bf16', bf16)):
        capture(model.teacher.decode_head.conv_seg, outs, f'{key}.logits')
        capture(model.teacher.backbone.layer4, outs, f'{key}.feat')
        model(**data, mode='loss')
    # bf16: the cheap forward, then the fp32 reference of the deviation check (same inputs).
    assert len(outs['bf16.logits']) == 2 and len(outs['fp32.logits']) == 1
    assert outs['bf16.logits'][0].dtype == torch.bfloat16  # autocast really ran
    assert outs['bf16.logits'][1].dtype == torch.float32
    torch.testing.assert_close(outs['bf16.logits'][1], outs['fp32.logits'][0])
    for name in ('logits', 'feat'):
        cheap, ref = outs[f'bf16.{name}'][0].float(), outs[f'fp32.{name}'][0]
        diff = (cheap - ref).abs().max().item()
        assert 0 < diff <= REL_TOL * ref.abs().max().item(), name  # > 0: bf16 rounds
        reported = bf16.teacher_deviation[name]
        assert reported['max_abs_diff'] == pytest.approx(diff, rel=1e-5)
        assert reported['rel_diff'] == pytest.approx(diff / ref.abs().max().item(), rel=1e-5)
        agreement = (cheap.argmax(1) == ref.argmax(1)).float().mean().item()
        assert reported['argmax_agreement'] == pytest.approx(agreement)
        assert agreement >= ARGMAX_MIN
    assert fp32.teacher_deviation is None  # nothing to compare: the teacher ran as before


def test_output_deviation_matches_hand_values():
    ref = torch.tensor([[[1.0, 0.0], [0.0, 4.0]]]).permute(0, 2, 1)  # (1, 2 classes, 2)
    out = ref.clone()
    out[0, :, 0] = torch.tensor([0.0, 1.5])  # position 0: argmax flips from class 0 to 1
    dev = output_deviation([out, (torch.arange(3), )], [ref, (torch.arange(3), )])
    assert dev == dict(max_abs_diff=1.5, max_abs_ref=4.0, rel_diff=1.5 / 4.0,
                       argmax_agreement=0.5)
    with pytest.raises(RuntimeError, match='different tensors'):
        output_deviation([out], [ref[:, :1]])


def test_losses_get_fp32_inputs_and_return_fp32_under_a_bf16_teacher(no_flush):
    model = build(teacher_runtime=dict(precision='bf16'))
    seen = capture_loss_inputs(model)
    raw = {}
    capture(model.teacher.backbone.layer4, raw, 'feat')
    capture(model.teacher.decode_head.conv_seg, raw, 'logits')
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert raw['feat'][0].dtype == torch.bfloat16
    # The losses see the bf16 forward's tensors (cast up), not the fp32 reference's.
    assert torch.equal(seen['loss_kd'][0]['preds_T'], raw['logits'][0].float())
    assert not torch.equal(seen['loss_kd'][0]['preds_T'], raw['logits'][1])
    assert set(seen) == {'loss_kd', 'loss_feat'}
    dtypes = {(name, arg): v.dtype for name, calls in seen.items() for kwargs in calls
              for arg, v in kwargs.items()}
    assert set(dtypes) == {('loss_kd', 'preds_S'), ('loss_kd', 'preds_T'),
                           ('loss_feat', 's_feature'), ('loss_feat', 't_feature')}
    assert set(dtypes.values()) == {torch.float32}
    assert all(v.dtype == torch.float32 for v in losses.values())


def test_teacher_tensors_can_be_saved_for_backward(no_flush):
    """Why the teacher runs under no_grad and not inference_mode."""
    model = build(teacher_runtime=dict(precision='bf16'))
    seen = capture_loss_inputs(model)
    data = model.data_preprocessor(seg_inputs(), True)
    model(**data, mode='loss')
    teacher = seen['loss_kd'][0]['preds_T']
    assert not teacher.is_inference()
    student = torch.zeros_like(teacher, requires_grad=True)
    F.mse_loss(student, teacher).backward()  # mse_loss saves its target for backward
    assert student.grad.abs().sum() > 0
    with torch.inference_mode():
        inference_teacher = teacher.clone()
    with pytest.raises(RuntimeError, match='Inference tensors cannot be saved for backward'):
        F.mse_loss(student, inference_teacher).backward()


def test_deviation_is_measured_and_logged_once(logged, no_flush):
    model = build(teacher_runtime=dict(precision='bf16'))
    calls = []
    model.teacher.backbone.layer1.register_forward_hook(lambda *a: calls.append(1))
    data = model.data_preprocessor(seg_inputs(), True)
    model(**data, mode='loss')
    first = model.teacher_deviation
    recorder_lines = [line for line in logged if 'recorder "' in line]
    assert len(recorder_lines) == 2  # one per teacher recorder
    assert 'recorder "logits"' in recorder_lines[0] and 'argmax agreement' in recorder_lines[0]
    assert any('bfloat16 autocast' in line for line in logged)
    assert len(calls) == 2  # the bf16 forward and the fp32 reference
    logged.clear()
    calls.clear()
    for _ in range(2):
        model(**data, mode='loss')
    assert logged == [] and len(calls) == 2  # one teacher forward per step, nothing logged
    assert model.teacher_deviation is first


def test_bf16_training_step_trains_the_student_and_keeps_the_teacher_frozen(no_flush):
    model = build(teacher_runtime=dict(precision='bf16'))
    model.train()
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.student.backbone.stem[0].weight.grad.abs().sum() > 0
    assert model.connectors.feat_adapter.conv.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    model.zero_grad()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(2):
        model.train_step(seg_inputs(), optim)
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k  # weights and BN statistics
        assert v.dtype == teacher_before[k].dtype, k  # autocast never casts the weights
    assert not model.teacher.training
    assert any(not torch.equal(v, student_before[k])
               for k, v in model.student.state_dict().items())


def test_fp16_is_refused_on_the_cpu():
    model = build(teacher_runtime=dict(precision='fp16'))
    data = model.data_preprocessor(seg_inputs(), True)
    with pytest.raises(ValueError, match="precision='fp16' needs a GPU.*precision='bf16'"):
        model(**data, mode='loss')


@pytest.mark.parametrize('overrides,error,match', [
    (dict(teacher_runtime=dict(precision='int8')), ValueError,
     r"precision must be one of \['inherit', 'fp32', 'bf16', 'fp16'\], got 'int8'"),
    (dict(teacher_runtime=dict(dtype='bf16')), ValueError,
     r"unknown keys \['dtype'\]; allowed: \['channels_last', 'check_deviation', 'compile', "
     r"'flush_denormal', 'precision'\]"),
    (dict(teacher_runtime=dict(flush_denormal='yes')), TypeError,
     'flush_denormal must be True or False'),
    (dict(teacher_runtime=dict(compile=dict(bogus=1)), teacher_forward='full'), ValueError,
     r"unknown torch.compile arguments \['bogus'\]; allowed: .*'backend'"),
    (dict(teacher_runtime=dict(compile=True)), ValueError,
     'compile needs teacher_forward="full"'),
])
def test_config_errors_name_the_allowed_values(overrides, error, match):
    with pytest.raises(error, match=match):
        build(**overrides)


def test_flush_denormal_reaches_every_thread(no_flush):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert flushed_thread_fraction() == 0.0  # also starts the OpenMP worker thread
        # torch's own switch sets the calling thread only: half of the work still sees
        # denormals. This is why set_flush_denormal_all_threads exists.
        torch.set_flush_denormal(True)
        assert flushed_thread_fraction() == 0.5
        torch.set_flush_denormal(False)
        assert flushed_thread_fraction() == 0.0
        assert set_flush_denormal_all_threads(True)
        assert flushed_thread_fraction() == 1.0
        set_flush_denormal_all_threads(False)
        assert flushed_thread_fraction() == 0.0
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize('flush', [True, False])
def test_denormals_are_flushed_during_the_teacher_forward_only(flush, no_flush):
    model = build(teacher_runtime=dict(flush_denormal=flush))
    during = {}

    def probe(key):
        def hook(*args):
            during[key] = flushed_thread_fraction()  # (returns None: the output is kept)
        return hook

    model.teacher.backbone.layer1.register_forward_hook(probe('teacher'))
    model.student.backbone.layer1.register_forward_hook(probe('student'))
    data = model.data_preprocessor(seg_inputs(), True)
    model(**data, mode='loss')
    assert during == dict(teacher=1.0 if flush else 0.0, student=0.0)
    assert flushed_thread_fraction() == 0.0  # switched back off for the rest of the process
    assert model.teacher_deviation is None  # flushing alone triggers no fp32 comparison


def test_channels_last_teacher(no_flush):
    model = build(teacher_runtime=dict(channels_last=True))
    keys = set(model.state_dict())
    data = model.data_preprocessor(seg_inputs(), True)
    model(**data, mode='loss')
    weight = model.teacher.backbone.stem[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    assert set(model.state_dict()) == keys
    for dev in model.teacher_deviation.values():  # fp32 either way: only rounding differs
        assert dev['rel_diff'] < 1e-5 and dev['argmax_agreement'] == 1.0


def test_compiled_teacher_records_like_the_eager_one(no_flush):
    dynamo = pytest.importorskip('torch._dynamo')
    if not dynamo.is_dynamo_supported():
        pytest.skip('torch.compile is not supported on this Python/platform')
    dynamo.reset()
    dynamo.utils.counters.clear()
    # backend='eager' traces with Dynamo (hooks, recorders) without compiling kernels with a
    # C++ compiler, which would take minutes on a CPU test machine; the outputs must then be
    # those of the eager teacher.
    model = build(teacher_forward='full', teacher_runtime=dict(compile=dict(backend='eager')))
    keys = set(model.state_dict())
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert dynamo.utils.counters['stats']['unique_graphs'] > 0  # it really was compiled
    assert {'distill.loss_kd', 'distill.loss_feat'} <= set(losses)
    for dev in model.teacher_deviation.values():
        assert dev['max_abs_diff'] <= 1e-5 * dev['max_abs_ref']
    assert set(model.state_dict()) == keys  # no "_orig_mod." keys in checkpoints
    dynamo.reset()


def test_adversarial_distiller_with_a_bf16_teacher(no_flush):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_adversarial.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = 'AdversarialDistiller'
    model_cfg.student['_scope_'] = 'mmseg'
    model_cfg.teacher['_scope_'] = 'mmseg'
    model_cfg.teacher_runtime = dict(precision='bf16')
    torch.manual_seed(0)
    model = build_own(MODELS, model_cfg)
    critic_inputs = []
    model.discriminator.register_forward_pre_hook(lambda m, args: critic_inputs.append(args[0]))
    critic = list(model.discriminator.parameters())
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith('discriminator.')]
    optim = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.SGD(rest, lr=0.01)),
        discriminator=OptimWrapper(torch.optim.SGD(critic, lr=0.01)))
    log = model.train_step(seg_inputs(), optim)
    assert {'distill.loss_adv', 'disc.loss'} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in log.values())
    assert critic_inputs and all(x.dtype == torch.float32 for x in critic_inputs)
    assert set(model.teacher_deviation) == {'logits', 'feat'}


@pytest.mark.skipif(not torch.cuda.is_available(), reason='fp16/bf16 teacher on a GPU: no CUDA')
@pytest.mark.parametrize('precision,dtype', [('fp16', torch.float16), ('bf16', torch.bfloat16)])
def test_reduced_precision_teacher_on_the_gpu(precision, dtype):
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bf16')
    model = build(teacher_runtime=dict(precision=precision)).cuda()
    seen = capture_loss_inputs(model)
    raw = {}
    capture(model.teacher.decode_head.conv_seg, raw, 'logits')
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    assert raw['logits'][0].dtype == dtype and raw['logits'][1].dtype == torch.float32
    assert all(v.dtype == torch.float32 for calls in seen.values() for kwargs in calls
               for v in kwargs.values())
    assert all(v.dtype == torch.float32 for v in losses.values())
    for dev in model.teacher_deviation.values():
        assert dev['rel_diff'] <= REL_TOL and dev['argmax_agreement'] >= ARGMAX_MIN

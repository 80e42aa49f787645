"""STKD: one mixup shared by teacher and student, the mixing record, the loss and its errors."""
import copy
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmstructkd.models import MixRecord, STKDLoss, STKDMixup, get_mix_record
from mmstructkd.models.batch_augments.mix_record import attach_record
from mmstructkd.models.stages.label_stages import mix_outputs
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR, distill_loss_on, load_config, save_teacher

NO_AUGMENT = object()  # build(): a student preprocessor without batch augments


def build(augments=None, **overrides):
    """The distiller of tests/data/configs/tiny_cls_stkd.py (batch augments replaced if given)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_stkd.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    preprocessor = model.student.data_preprocessor
    if augments is NO_AUGMENT:
        preprocessor.pop('batch_augments')
    elif augments is not None:
        preprocessor.batch_augments = augments
    for key, value in overrides.items():  # replace (ConfigDict.update would merge)
        model[key] = value
    model.student['_scope_'] = 'mmpretrain'
    torch.manual_seed(0)
    return build_own(MODELS, model)


def cls_batch(n=8, seed=0):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 255, (n, 3, 32, 32), generator=g).float()
    labels = torch.randint(0, 3, (n, ), generator=g)
    return dict(inputs=list(inputs),
                data_samples=[DataSample().set_gt_label(int(y)) for y in labels])


def labels_of(batch):
    return torch.tensor([int(s.gt_label) for s in batch['data_samples']])


def capture_records(model):
    """Keep the record of every mixing the student's batch augment does."""
    augment = model.data_preprocessor.batch_augments.augments[-1]
    assert isinstance(augment, STKDMixup)
    records, mix = [], augment.mix

    def counted_mix(*args):
        out = mix(*args)
        records.append(out[2])
        return out

    augment.mix = counted_mix
    return records


def capture_logits(model):
    logits = {}
    for side in ('student', 'teacher'):
        getattr(model, side).head.fc.register_forward_hook(
            lambda m, a, out, side=side: logits.__setitem__(side, out.detach().double()))
    return logits


def hand_kl(s, t, tau):
    """Per sample tau^2 * sum_c p_t (log p_t - log p_s), softmax written out (float64)."""
    p_t = (t / tau).exp() / (t / tau).exp().sum(1, keepdim=True)
    log_p_s = s / tau - (s / tau).exp().sum(1, keepdim=True).log()
    return tau**2 * (p_t * (p_t.log() - log_p_s)).sum(1)


# ------------------------------------------------------------------ the shared virtual batch
def test_one_mixing_per_step_and_teacher_and_student_get_the_very_same_tensor():
    model = build()
    model.train()
    records = capture_records(model)
    seen = {'teacher': [], 'student': []}
    for side, inputs in seen.items():
        getattr(model, side).backbone.register_forward_pre_hook(
            lambda m, args, inputs=inputs: inputs.append(args[0]))
    batch = cls_batch()
    clean = model.data_preprocessor(copy.deepcopy(batch), False)['inputs']
    assert records == []  # no mixing at validation
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train_step(copy.deepcopy(batch), optim)
    assert len(records) == 1 and len(seen['teacher']) == 1 and len(seen['student']) == 1
    teacher_input, student_input = seen['teacher'][0], seen['student'][0]
    assert teacher_input is student_input
    lam, perm = records[0].lam, records[0].perm
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(8))
    torch.testing.assert_close(student_input, lam * clean + (1 - lam) * clean[perm])


def test_lam_and_the_permutation_are_recorded_in_every_data_sample():
    model = build(augments=dict(augments=[dict(type='STKDMixup', alpha=0.4)]))
    batch = cls_batch()
    labels = labels_of(batch)
    np.random.seed(3)
    torch.manual_seed(5)
    expected_lam, expected_perm = np.random.beta(0.4, 0.4), torch.randperm(8)
    np.random.seed(3)
    torch.manual_seed(5)
    samples = model.data_preprocessor(copy.deepcopy(batch), True)['data_samples']
    record = get_mix_record(samples, 'test')
    assert record.lam == pytest.approx(expected_lam)
    assert torch.equal(record.perm, expected_perm) and bool(record.virtual.all())
    one_hot = torch.eye(3)[labels]
    for i, sample in enumerate(samples):
        mix = sample.gt_score.stkd_mix
        assert (mix.index, mix.lam, mix.partner, mix.virtual) == (
            i, record.lam, int(expected_perm[i]), True)
        # the mixed label the student's CrossEntropyLoss uses
        torch.testing.assert_close(
            sample.gt_score, record.lam * one_hot[i] + (1 - record.lam) * one_hot[expected_perm[i]])


def test_stkd_mixup_is_found_by_a_stock_cls_data_preprocessor_under_the_mmpretrain_scope():
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        preprocessor = MMPRETRAIN_MODELS.build(dict(
            type='ClsDataPreprocessor', num_classes=3,
            batch_augments=dict(augments=dict(type='STKDMixup', alpha=0.5, clean_ratio=0.25))))
    augment, = preprocessor.batch_augments.augments
    assert isinstance(augment, STKDMixup)
    assert (augment.alpha, augment.clean_ratio) == (0.5, 0.25)


# ------------------------------------------------------------------ the losses
def test_mixed_label_ce_and_the_kd_term_match_hand_computed_values():
    model = build()
    model.train()
    logits = capture_logits(model)
    batch = cls_batch()
    labels = labels_of(batch)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    record = get_mix_record(data['data_samples'], 'test')
    losses = model(**data, mode='loss')
    s, t = logits['student'], logits['teacher']
    log_p = s - s.exp().sum(1, keepdim=True).log()
    rows = torch.arange(8)
    ce = -(record.lam * log_p[rows, labels]
           + (1 - record.lam) * log_p[rows, labels[record.perm]]).mean()
    assert losses['student.loss'].item() == pytest.approx(ce.item(), rel=1e-5)
    kd = hand_kl(s, t, 4.0).mean()
    assert kd.item() > 1e-4  # the check below means something
    assert losses['distill.loss_stkd'].item() == pytest.approx(kd.item(), rel=1e-5)


def mix_virtual(data_samples):
    """What the distiller's STKDMixRecord stage gives STKDLoss: the virtual samples."""
    return mix_outputs(data_samples, 'test')['virtual']


def samples_with_record(record):
    from mmpretrain.structures import DataSample
    scores = torch.eye(2)[torch.zeros(len(record), dtype=torch.long)]
    return [DataSample().set_gt_score(row) for row in attach_record(scores, record)]


def test_stkd_loss_matches_closed_form_values():
    # tau = 2. Sample 0 (virtual): t = (2 ln 3, 0) -> p_t = (3/4, 1/4); s = 0 -> p_s = (1/2, 1/2):
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2). Sample 1 (clean): t = 0, s = (2 ln 3, 0) -> p_s = (3/4,
    # 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3). Both times tau^2 = 4.
    record = MixRecord(lam=0.3, perm=torch.tensor([1, 0]), virtual=torch.tensor([True, False]))
    samples = samples_with_record(record)
    s = torch.tensor([[0., 0.], [2 * math.log(3), 0.]])
    t = torch.tensor([[2 * math.log(3), 0.], [0., 0.]])
    virtual = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    clean = 4 * 0.5 * math.log(4 / 3)
    value = STKDLoss(tau=2.0)(s, t, mix_virtual(samples))
    assert value.item() == pytest.approx(virtual, rel=1e-6)
    out = STKDLoss(tau=2.0, virtual_weight=2.0, clean_weight=0.5)(s, t, mix_virtual(samples))
    assert out['virtual'].item() == pytest.approx(2 * virtual, rel=1e-6)
    assert out['clean'].item() == pytest.approx(0.5 * clean, rel=1e-6)


def test_clean_and_virtual_samples_are_distilled_with_their_own_weights():
    model = build(augments=dict(augments=[dict(type='STKDMixup', clean_ratio=0.5)]),
                  distill_losses=dict(loss_stkd=dict(type='STKDLoss', tau=2.0,
                                                     virtual_weight=1.5, clean_weight=0.5)))
    model.train()
    logits = capture_logits(model)
    batch = cls_batch()
    labels = labels_of(batch)
    clean = model.data_preprocessor(copy.deepcopy(batch), False)['inputs']
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    record = get_mix_record(data['data_samples'], 'test')
    lam, perm = record.lam, record.perm
    assert record.virtual.tolist() == [False] * 4 + [True] * 4
    torch.testing.assert_close(data['inputs'][:4], clean[:4])
    torch.testing.assert_close(data['inputs'][4:], lam * clean[4:] + (1 - lam) * clean[perm[4:]])
    for i, sample in enumerate(data['data_samples']):
        expected = torch.eye(3)[labels[i]]
        if i >= 4:
            expected = lam * expected + (1 - lam) * torch.eye(3)[labels[perm[i]]]
        torch.testing.assert_close(sample.gt_score, expected)
        assert sample.gt_score.stkd_mix.lam == (lam if i >= 4 else 1.0)
    losses = model(**data, mode='loss')
    kl = hand_kl(logits['student'], logits['teacher'], 2.0)
    assert losses['distill.loss_stkd.virtual'].item() == pytest.approx(
        1.5 * kl[4:].mean().item(), rel=1e-5)
    assert losses['distill.loss_stkd.clean'].item() == pytest.approx(
        0.5 * kl[:4].mean().item(), rel=1e-5)


# ------------------------------------------------------------------ validation
def test_no_mixing_at_validation():
    model = build()
    records = capture_records(model)
    batch = cls_batch()
    val = model.data_preprocessor(copy.deepcopy(batch), False)
    plain = build(augments=NO_AUGMENT).data_preprocessor(copy.deepcopy(batch), False)
    assert torch.equal(val['inputs'], plain['inputs'])
    assert all(getattr(s.gt_score, 'stkd_mix', None) is None for s in val['data_samples'])
    model.eval()
    predictions = model.val_step(copy.deepcopy(batch))
    assert len(predictions) == 8 and records == []
    with pytest.raises(RuntimeError, match='no STKD mixing record'):
        STKDLoss()(torch.zeros(8, 3), torch.zeros(8, 3), mix_virtual(val['data_samples']))


# ------------------------------------------------------------------ errors
def test_a_batch_not_mixed_by_stkd_mixup_asks_for_the_batch_augment():
    model = build(augments=NO_AUGMENT)
    model.train()
    data = model.data_preprocessor(cls_batch(), True)
    with pytest.raises(RuntimeError, match=r"carry no STKD mixing record.*add dict\(type="
                                           r"'STKDMixup'.*data_preprocessor.batch_augments"):
        model(**data, mode='loss')


def test_mixing_twice_is_refused():
    model = build()
    data = cls_batch()
    torch.manual_seed(0)
    model.data_preprocessor(data, True)  # sets the mixed gt_score on data['data_samples']
    with pytest.raises(RuntimeError, match='already mixed.*mix twice'):
        model.data_preprocessor(data, True)


def test_another_mixing_batch_augment_beside_stkd_mixup_is_named():
    # probs: RandomBatchAugment picks mmpretrain's Mixup for this batch
    model = build(augments=dict(augments=[dict(type='Mixup', alpha=1.0), dict(type='STKDMixup')],
                                probs=[1.0, 0.0]))
    model.train()
    data = model.data_preprocessor(cls_batch(), True)
    with pytest.raises(RuntimeError, match='not by STKDMixup.*Mixup or CutMix.*remove the others'):
        model(**data, mode='loss')


def test_data_samples_out_of_batch_order_and_bad_arguments_are_refused():
    record = MixRecord(lam=0.3, perm=torch.tensor([1, 0]), virtual=torch.tensor([True, True]))
    samples = samples_with_record(record)
    with pytest.raises(RuntimeError, match='not the mixed batch in its order'):
        STKDLoss()(torch.zeros(2, 2), torch.zeros(2, 2), mix_virtual(samples[::-1]))
    with pytest.raises(RuntimeError, match='not the mixed batch in its order'):
        STKDLoss()(torch.zeros(1, 2), torch.zeros(1, 2), mix_virtual(samples[:1]))
    with pytest.raises(ValueError, match=r'shape \(N, C\) with N=2'):
        STKDLoss()(torch.zeros(2, 2), torch.zeros(2, 3), mix_virtual(samples))
    with pytest.raises(ValueError, match='needs the data samples'):
        STKDLoss()(torch.zeros(2, 2), torch.zeros(2, 2), mix_virtual(None))
    with pytest.raises(ValueError, match='alpha must be positive'):
        STKDMixup(alpha=0)
    with pytest.raises(ValueError, match=r'clean_ratio must be in \[0, 1\)'):
        STKDMixup(clean_ratio=1.0)
    with pytest.raises(ValueError, match='tau must be positive'):
        STKDLoss(tau=0)


# ------------------------------------------------------------------ training
def test_a_few_training_iterations_lower_the_loss(data_roots, tmp_path):
    ckpt = save_teacher('tiny_cls_teacher', str(tmp_path / 'teacher.pth'))
    runners = {}
    for variant in ('distilled', 'alone'):
        cfg = load_config(
            'tiny_cls_stkd', data_roots['cls'], str(tmp_path / variant),
            **{'model.teacher_ckpt': ckpt, 'train_cfg.max_iters': 16,
               'train_cfg.val_interval': 16, 'param_scheduler': [],
               'train_dataloader.sampler.shuffle': False,
               'default_hooks.checkpoint.interval': 100})
        runner = runners[variant] = Runner.from_cfg(cfg)
        if variant == 'alone':  # the same run on the same mixed images, STKD's term off
            runner.model.loss_scales.update({k: 0.0 for k in runner.model.loss_scales})
        runner.train()
    hub = runners['distilled'].message_hub
    history = hub.get_scalar('train/loss').data[0]
    assert len(history) == 16 and np.all(np.isfinite(history))
    # 4 batches per epoch, shuffle off: the first and the last epoch see the same images
    # (mixed afresh each step, which the mean over the epoch evens out).
    assert history[-4:].mean() < history[:4].mean(), history
    assert np.all(hub.get_scalar('train/distill.loss_stkd').data[0] > 0)
    assert 'val/accuracy/top1' in hub.log_scalars  # validated after training (no mixing)
    # the similarity term pulled the student toward the teacher's similarities
    batch = next(iter(runners['distilled'].train_dataloader))
    distilled, alone = (distill_loss_on(runners[v], batch) for v in ('distilled', 'alone'))
    assert distilled < alone, (distilled, alone)


def test_a_mapping_without_the_mixing_record_names_the_stage():
    mappings = dict(loss_stkd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                   preds_T=dict(from_student=False, recorder='logits')))
    with pytest.raises(ValueError, match=r"needs arguments \['virtual'\].*comes from the "
                       r"STKDMixRecord stage"):
        build(loss_forward_mappings=mappings, distill_stages=None)

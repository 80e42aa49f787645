"""The teacher-output cache (offline teacher) and the replayable-views dataset wrapper."""
import copy
import math
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from mmstructkd.datasets import KEY_FIELD, ReplayableViews
from mmstructkd.models.distillers.teacher_cache import TensorCodec
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR, load_config


def cls_distiller(tmp_path, **cache):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_distill.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor = cfg.data_preprocessor
    model_cfg.student['_scope_'] = 'mmpretrain'
    model_cfg.teacher['_scope_'] = 'mmpretrain'
    model_cfg.teacher_cache = dict(dict(dir=str(tmp_path / 'cache'), dtype='fp32'), **cache)
    torch.manual_seed(0)
    return build_own(MODELS, model_cfg)


def batch(keys, seed=0, dataset='ds'):
    """Preprocessed-style inputs (N, 3, 32, 32) and data samples carrying cache keys."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(keys), 3, 32, 32, generator=g)
    samples = []
    for k in keys:
        s = DataSample().set_gt_label(k % 3)
        s.set_metainfo({KEY_FIELD: (dataset, k, 0)})
        samples.append(s)
    return inputs, samples


def teacher_calls(model):
    calls = []
    model.teacher.head.fc.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    return calls


# ---------------------------------------------------------------------- codec
def test_codec_fp32_round_trip_is_exact_and_fp16_within_its_rounding():
    t = torch.randn(5, 7, 9)
    assert torch.equal(TensorCodec('fp32').decode(TensorCodec('fp32').encode(t), 'cpu'), t)
    back = TensorCodec('fp16').decode(TensorCodec('fp16').encode(t), 'cpu')
    assert (back - t).abs().max() <= 2**-11 * t.abs().max()  # fp16 unit roundoff
    assert back.dtype == torch.float32


def test_codec_topk_keeps_the_top_logits_and_the_tail_mass():
    # Hand-computed: the tail [1, 0, -1] becomes three equal logits r with
    # 3 * exp(r) = e + 1 + 1/e: r = ln(4.08616) - ln(3) = 0.308994.
    t = torch.tensor([3.0, 1.0, 0.0, -1.0])
    back = TensorCodec('fp32', topk=1).decode(TensorCodec('fp32', topk=1).encode(t), 'cpu')
    r = math.log(math.e + 1 + 1 / math.e) - math.log(3)
    torch.testing.assert_close(back, torch.tensor([3.0, r, r, r]))
    # The softmax of the top class is exact, and so is the total tail probability.
    torch.testing.assert_close(back.softmax(0)[0], t.softmax(0)[0])
    # Per position of a (C, H, W) score map as well.
    m = torch.randn(10, 4, 3)
    back = TensorCodec('fp32', topk=3).decode(TensorCodec('fp32', topk=3).encode(m), 'cpu')
    top = m.topk(3, dim=0).indices
    torch.testing.assert_close(back.softmax(0).gather(0, top), m.softmax(0).gather(0, top))


def test_codec_scale_stores_a_smaller_map_and_restores_its_size():
    m = torch.arange(16.0).view(1, 4, 4).repeat(2, 1, 1)
    enc = TensorCodec('fp32', scale=0.5).encode(m)
    assert enc['values'].shape == (2, 2, 2)
    torch.testing.assert_close(enc['values'][0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert TensorCodec.decode(enc, 'cpu').shape == (2, 4, 4)


# ---------------------------------------------------------------------- the cache in a step
def test_second_pass_reads_the_cache_and_gives_the_same_losses(tmp_path):
    model = cls_distiller(tmp_path)
    calls = teacher_calls(model)
    inputs, samples = batch([0, 1, 2, 3])
    first = model.loss(inputs, samples)
    assert calls == [4]  # all missed: one teacher forward on the whole batch
    assert model.teacher_cache.stats['stored'] == 4
    inputs2, samples2 = batch([4, 1, 5, 3])  # same keys 1, 3 -> same images in a real run
    inputs2[[1, 3]] = inputs[[1, 3]]
    model.loss(inputs2, samples2)
    # Missed samples 4, 5 ran; then the verification run on the two cached ones.
    assert calls == [4, 2, 2]
    again = model.loss(inputs, samples)
    assert calls == [4, 2, 2]  # all cached, verification done: the teacher did not run
    assert model.teacher_cache.stats['hits'] == 2 + 4
    for key in first:
        torch.testing.assert_close(again[key], first[key], rtol=0, atol=0)


def test_compressed_cache_stays_close_and_gradients_still_reach_the_student(tmp_path):
    plain = cls_distiller(tmp_path / 'plain')
    packed = cls_distiller(tmp_path / 'packed', dtype='fp16', topk=dict(logits=2))
    packed.load_state_dict(plain.state_dict())
    inputs, samples = batch([0, 1, 2, 3])
    ref = plain.loss(inputs, samples)['distill.loss_kd']
    packed.loss(inputs, samples)  # fills the cache
    calls = teacher_calls(packed)
    packed.loss(inputs, samples)  # verifies the cached samples once (the teacher runs)
    loss = packed.loss(inputs, samples)['distill.loss_kd']
    assert calls == [4] and packed.teacher_cache.stats['hits'] == 8  # then read from the cache
    # 3 classes, top-2 kept: only the smallest logit is replaced by itself (one tail value),
    # so the only error left is fp16 rounding of the logits: close, not equal.
    assert loss.item() == pytest.approx(ref.item(), rel=1e-2) and loss.item() != ref.item()
    loss.backward()
    assert packed.student.head.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in packed.teacher.parameters())


def test_cache_for_other_teacher_weights_or_config_is_refused(tmp_path):
    model = cls_distiller(tmp_path)
    inputs, samples = batch([0, 1])
    model.loss(inputs, samples)
    other_weights = cls_distiller(tmp_path)
    with torch.no_grad():
        other_weights.teacher.head.fc.bias.add_(1.0)
    with pytest.raises(RuntimeError, match='teacher_weights.*Delete that folder'):
        other_weights.loss(inputs, samples)
    other_storage = cls_distiller(tmp_path, dtype='fp16')
    with pytest.raises(RuntimeError, match='codecs'):
        other_storage.loss(inputs, samples)
    other_data = cls_distiller(tmp_path)
    with pytest.raises(RuntimeError, match='dataset'):
        other_data.loss(*batch([0, 1], dataset='another'))


def test_truncated_entry_is_detected_recomputed_and_rewritten(tmp_path):
    model = cls_distiller(tmp_path)
    calls = teacher_calls(model)
    inputs, samples = batch([0, 1])
    first = model.loss(inputs, samples)
    path = model.teacher_cache._entry_path(('ds', 1, 0))
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)
    again = model.loss(inputs, samples)
    assert model.teacher_cache.stats['corrupt'] == 1
    assert calls == [2, 1, 1]  # sample 1 recomputed; sample 0 cached and verified
    assert os.path.getsize(path) == size  # rewritten whole
    torch.testing.assert_close(again['distill.loss_kd'], first['distill.loss_kd'])


def test_pipeline_that_does_not_replay_its_randomness_is_an_error(tmp_path):
    model = cls_distiller(tmp_path)
    model.loss(*batch([0, 1], seed=0))
    with pytest.raises(RuntimeError, match='does not replay its randomness'):
        model.loss(*batch([0, 1], seed=1))  # same keys, other images


def test_missing_key_and_batch_augments_are_refused(tmp_path):
    model = cls_distiller(tmp_path)
    inputs, samples = batch([0, 1])
    samples[1] = BaseDataElement()
    with pytest.raises(RuntimeError, match='ReplayableViews'):
        model.loss(inputs, samples)
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_distill.py'))
    cfg.model.data_preprocessor = cfg.data_preprocessor
    cfg.model.student['_scope_'] = 'mmpretrain'
    cfg.model.teacher['_scope_'] = 'mmpretrain'
    cfg.model.student.data_preprocessor.batch_augments = dict(
        augments=[dict(type='Mixup', alpha=1.0)])
    cfg.model.teacher_cache = dict(dir=str(tmp_path / 'c2'))
    with pytest.raises(ValueError, match='batch augments'):
        build_own(MODELS, cfg.model)


# ---------------------------------------------------------------------- ReplayableViews
class RandomDataset(torch.utils.data.Dataset):
    """Each item draws from python's, numpy's and torch's RNGs, like augmentation does."""

    def __len__(self):
        return 6

    def __getitem__(self, idx):
        value = (idx, random.random(), float(np.random.rand()), float(torch.rand(())))
        return dict(inputs=value, data_samples=BaseDataElement())


def test_views_replay_exactly_and_leave_the_outer_rng_alone():
    ds = ReplayableViews(RandomDataset(), num_views=3, seed=0)
    seen = {}
    np.random.seed(123)
    for _ in range(40):
        for idx in range(len(ds)):
            item = ds[idx]
            key = item['data_samples'].metainfo[KEY_FIELD]
            assert key[:2] == (ds.fingerprint, idx)
            assert seen.setdefault(key, item['inputs']) == item['inputs']  # replayed exactly
    assert {k[2] for k in seen} == {0, 1, 2}  # every view drawn
    assert len({seen[k] for k in seen}) == len(seen)  # views really differ
    # The seeding inside does not reset the streams around the wrapper.
    random.seed(5)
    expected = [random.random() for _ in range(2)]
    random.seed(5)
    got = [random.random()]
    ds[1]
    got.append(random.random())
    assert got == expected


def test_runner_trains_with_the_cache_and_reads_it_in_the_second_epoch(data_roots, tmp_path):
    cfg = load_config('tiny_cls_distill.py'[:-3], data_roots['cls'], str(tmp_path / 'work'))
    # A random flip: its draw must be replayed for the cached teacher outputs to be right
    # (the cache verifies it on the first batch it reads).
    pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                dict(type='PackInputs')]
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_dataloader.dataset = dict(type='mmstructkd.ReplayableViews',
                                        dataset=cfg.train_dataloader.dataset, num_views=1)
    cfg.model.teacher_cache = dict(dir=str(tmp_path / 'cache'), dtype='fp16')
    cfg.train_cfg.max_iters = 8  # 32 images, batch 8: two passes
    runner = Runner.from_cfg(cfg)
    runner.train()
    stats = runner.model.teacher_cache.stats
    assert stats['stored'] == 32 and stats['misses'] == 32 and stats['hits'] == 32
    assert not runner.model.teacher_cache.verify  # the check ran (and passed)

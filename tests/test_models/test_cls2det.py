"""Classifier-to-detector distillation: box crop, positives, losses, the tiny detectors."""
import argparse
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch import nn

from mmstructkd.models import Cls2DetLoss, Cls2DetStage, MethodInputsRecorder, module_probe
from mmstructkd.models.losses.cls2det_loss import (localization_l1, recognition_kd,
                                                   reduce_positives)
from mmstructkd.models.ops import (DetPositives, crop_and_resize, detector_positives,
                                   expand_boxes, probe_layers)
from mmstructkd.models.ops.box_crop import clamp_boxes_to_image
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR, REPO_ROOT

#: Keys of one classifier-to-detector setting that configure the stage (the model work).
STAGE_KEYS = ('crop_size', 'context', 'min_size', 'clamp_boxes', 'class_map')


class Cls2Det:
    """A ``Cls2DetStage`` and its ``Cls2DetLoss``, configured as one setting (the keys split
    as a distiller config splits them) and called with the models as the distiller's step
    calls them: the stage's targets, then the loss on them."""

    def __init__(self, recognition=dict(tau=2.0, loss_weight=0.4),
                 localization=dict(layers=('input', 'backbone.maxpool'), pool_sizes=(4, 8),
                                   loss_weight=0.15), **stage_cfg):
        loc = None if localization is None else dict(localization)
        layers = None if loc is None else loc.pop('layers', ('input', 'backbone.maxpool'))
        max_samples = None if loc is None else loc.pop('max_samples', None)
        object.__setattr__(self, 'loss', Cls2DetLoss(recognition=recognition, localization=loc))
        object.__setattr__(self, 'stage', Cls2DetStage(
            recognition=recognition is not None, layers=layers, max_samples=max_samples,
            **stage_cfg))
        self.loss.check_stage(self.stage)

    @classmethod
    def from_model_cfg(cls, model_cfg):
        built = cls.__new__(cls)
        object.__setattr__(built, 'stage', build_own(MODELS, model_cfg.distill_stages.cls2det))
        object.__setattr__(built, 'loss', build_own(MODELS, model_cfg.distill_losses.loss_cls2det))
        built.loss.check_stage(built.stage)
        return built

    def __getattr__(self, name):
        if name in STAGE_KEYS:
            return getattr(self.stage, name)
        if name == 'recognition':
            return self.loss.recognition
        if name == 'localization':
            if self.loss.localization is None:
                return None
            return dict(self.loss.localization, layers=self.stage.layers,
                        max_samples=self.stage.max_samples)
        raise AttributeError(name)

    def __setattr__(self, name, value):
        setattr(self.stage if name in STAGE_KEYS else self.loss, name, value)

    def _teacher_logits(self, logits, num_classes):
        return self.stage._teacher_logits(logits, num_classes)

    def loss_by_positives(self, pos, teacher, teacher_inputs, data_samples):
        return self.loss(self.stage.targets(pos, module_probe(teacher), teacher_inputs,
                                            data_samples))

    def __call__(self, head_inputs, student, teacher, teacher_inputs, data_samples):
        return self.loss_by_positives(detector_positives(student, head_inputs), teacher,
                                      teacher_inputs, data_samples)


# ------------------------------------------------------------------ the crop
def product_image():
    """One 4x4 channel with value x * y at pixel (y, x): bilinear sampling reproduces
    px * py exactly at any point (px, py) in pixel-centre coordinates."""
    y, x = torch.meshgrid(torch.arange(4.), torch.arange(4.), indexing='ij')
    return (x * y)[None, None]


def test_crop_matches_hand_computed_values_and_box_gradient():
    # Box (0.8, 1, 3.2, 4), 2x2 crop: sample x = 0.8 + 2.4 * (0.25, 0.75) = 1.4, 2.6 and
    # y = 1 + 3 * (0.25, 0.75) = 1.75, 3.25; pixel centres sit at i + 0.5, so the sampled
    # pixel coordinates are px = (0.9, 2.1), py = (1.25, 2.75) and the crop is px * py.
    box = torch.tensor([[0.8, 1.0, 3.2, 4.0]], requires_grad=True)
    crop = crop_and_resize(product_image(), box, torch.tensor([0]), 2)
    expected = torch.tensor([[0.9 * 1.25, 2.1 * 1.25], [0.9 * 2.75, 2.1 * 2.75]])
    assert torch.allclose(crop[0, 0], expected, atol=1e-5)
    # d crop[0, 1] / d box, with crop[0, 1] = px1 * py0, px1 = x1 + 0.75 (x2 - x1) - 0.5 and
    # py0 = y1 + 0.25 (y2 - y1) - 0.5: (py0 * 0.25, px1 * 0.75, py0 * 0.75, px1 * 0.25).
    crop[0, 0, 0, 1].backward()
    assert torch.allclose(box.grad, torch.tensor([[1.25 * 0.25, 2.1 * 0.75, 1.25 * 0.75,
                                                   2.1 * 0.25]]), atol=1e-5)


def test_crop_keeps_box_order_across_images_and_reads_zero_outside():
    images = torch.cat([product_image(), product_image() + 100])
    boxes = torch.tensor([[0.8, 1.0, 3.2, 4.0], [0.8, 1.0, 3.2, 4.0], [10., 10., 12., 12.]])
    crops = crop_and_resize(images, boxes, torch.tensor([1, 0, 0]), (2, 2))
    assert torch.allclose(crops[0] - crops[1], torch.full((1, 2, 2), 100.))
    assert torch.equal(crops[2], torch.zeros(1, 2, 2))  # fully outside the image
    assert crop_and_resize(images, boxes[:0], torch.tensor([], dtype=torch.long),
                           3).shape == (0, 1, 3, 3)


def test_expand_boxes_adds_context_on_every_side():
    boxes = torch.tensor([[10., 20., 30., 60.]])
    assert torch.equal(expand_boxes(boxes, 0.1), torch.tensor([[8., 16., 32., 64.]]))


def test_clamp_boxes_to_image_is_one_sided_and_stops_the_gradient_of_clamped_sides():
    # Image H = 5, W = 7. x1, y1 only clamped at 0 and x2, y2 only at W, H (the released code):
    # a box right of / below the image keeps its x1 / y1.
    boxes = torch.tensor([[-2., -1.5, 5.5, 9.], [8., 6., 9., 7.], [0.5, 1., 6.5, 4.5]],
                         requires_grad=True)
    clamped = clamp_boxes_to_image(boxes, (5, 7))
    assert torch.equal(clamped.detach(), torch.tensor([[0., 0., 5.5, 5.], [8., 6., 7., 5.],
                                                       [0.5, 1., 6.5, 4.5]]))
    clamped.sum().backward()
    # clamped sides: no gradient; a box inside (box 2) keeps all of it
    assert torch.equal(boxes.grad, torch.tensor([[0., 0., 1., 0.], [1., 1., 0., 0.],
                                                 [1., 1., 1., 1.]]))


def test_crop_of_a_clamped_box_matches_hand_computed_values_and_gradient():
    # A 3 x 5 (H x W) product image, value px * py at pixel centre coordinates (px, py).
    # Box (-1, -0.4, 4.6, 2.6) clamps to (0, 0, 4.6, 2.6): a 2x2 crop samples
    # x = 4.6 * (0.25, 0.75) = (1.15, 3.45) -> px = (0.65, 2.95) and
    # y = 2.6 * (0.25, 0.75) = (0.65, 1.95) -> py = (0.15, 1.45).
    y, x = torch.meshgrid(torch.arange(3.), torch.arange(5.), indexing='ij')
    image = (x * y)[None, None]
    box = torch.tensor([[-1., -0.4, 4.6, 2.6]], requires_grad=True)
    crop = crop_and_resize(image, clamp_boxes_to_image(box, (3, 5)), torch.tensor([0]), 2)
    expected = torch.tensor([[0.65 * 0.15, 2.95 * 0.15], [0.65 * 1.45, 2.95 * 1.45]])
    assert torch.allclose(crop[0, 0], expected, atol=1e-6)
    # crop[0, 1] = px1 * py0 with px1 = x1 + 0.75 (x2 - x1) - 0.5, py0 = y1 + 0.25 (y2 - y1)
    # - 0.5: d / d(x2, y2) = (0.75 py0, 0.25 px1); x1 and y1 were clamped: 0.
    crop[0, 0, 0, 1].backward()
    assert torch.allclose(box.grad, torch.tensor([[0., 0., 0.75 * 0.15, 0.25 * 2.95]]),
                          atol=1e-6)


@pytest.mark.parametrize('out_hw', [(3, 5), (4, 4)])
def test_crop_samples_the_points_of_an_affine_grid_of_the_box(out_hw):
    # The released crop is affine_grid + grid_sample (align_corners=False) with theta mapping
    # the output's [-1, 1] onto the box: x_in = (x2 - x1) / W * x_out + (x1 + x2) / W - 1 (and
    # alike in y). The same points as crop_and_resize, on a 7 x 11 image, boxes partly outside.
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 7, 11, generator=g)
    boxes = torch.tensor([[1.3, 0.7, 9.2, 5.9], [-2., 2., 6.5, 8.5], [4., -1., 12., 3.]])
    img_inds = torch.tensor([1, 0, 1])
    height, width = 7, 11
    theta = torch.zeros(3, 2, 3)
    theta[:, 0, 0] = (boxes[:, 2] - boxes[:, 0]) / width
    theta[:, 0, 2] = (boxes[:, 0] + boxes[:, 2]) / width - 1
    theta[:, 1, 1] = (boxes[:, 3] - boxes[:, 1]) / height
    theta[:, 1, 2] = (boxes[:, 1] + boxes[:, 3]) / height - 1
    grid = torch.nn.functional.affine_grid(theta, (3, 3, *out_hw), align_corners=False)
    expected = torch.nn.functional.grid_sample(images[img_inds], grid, align_corners=False)
    assert torch.allclose(crop_and_resize(images, boxes, img_inds, out_hw), expected,
                          atol=1e-6)


# ------------------------------------------------------------------ the losses
def test_recognition_kd_matches_hand_computed_values():
    # Teacher logits (ln 3, 0) -> p_t = (0.75, 0.25); a student at 0 everywhere.
    teacher = torch.tensor([[math.log(3.), 0.]])
    # softmax head, background last: q = (1/3, 1/3, 1/3); the teacher puts 0 on background.
    kl = recognition_kd(torch.zeros(1, 3), teacher, 'softmax', tau=1.0)
    assert kl.item() == pytest.approx(0.75 * math.log(0.75 * 3) + 0.25 * math.log(0.25 * 3))
    # a student that already agrees has no loss
    agree = torch.tensor([[math.log(0.75), math.log(0.25), -1e4]])
    assert recognition_kd(agree, teacher, 'softmax').item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match='C \\+ 1 = 3 logits'):
        recognition_kd(torch.zeros(1, 2), teacher, 'softmax')
    with pytest.raises(ValueError, match='softmax head distils the teacher.s softmax'):
        recognition_kd(torch.zeros(1, 3), teacher, 'softmax', teacher_target='sigmoid')


def test_recognition_kd_sigmoid_earlier_reading_softmax_target_summed():
    # teacher_target='softmax', class_reduction='sum': p_t = softmax(ln 3, 0) = (0.75, 0.25);
    # q = 0.5 per class; the binary KLs of 0.75 and 0.25 vs 0.5 are equal and summed.
    teacher = torch.tensor([[math.log(3.), 0.]])
    expected = 2 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    kl = recognition_kd(torch.zeros(1, 2), teacher, 'sigmoid', tau=1.0,
                        teacher_target='softmax', class_reduction='sum')
    assert kl.item() == pytest.approx(expected)
    # tau divides both: teacher (2 ln 3, 0) at tau 2 is the same p_t; student 0 stays 0.5.
    kl = recognition_kd(torch.zeros(1, 2), teacher * 2, 'sigmoid', tau=2.0,
                        teacher_target='softmax', class_reduction='sum')
    assert kl.item() == pytest.approx(expected)


def binary_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_recognition_kd_sigmoid_released_form_value_and_gradient():
    # The released kl-bce: p_t[c] = sigmoid(t[c] / tau) per class, mean over the C = 3 classes.
    # tau = 2, teacher (2 ln 3, 0, -2 ln 3) -> p_t = (3/4, 1/2, 1/4); student (2, 0, -1) ->
    # q = sigmoid((1, 0, -0.5)).
    tau = 2.0
    teacher = torch.tensor([[2 * math.log(3.), 0., -2 * math.log(3.)]])
    student = torch.tensor([[2., 0., -1.]], requires_grad=True)
    p_t, q = [0.75, 0.5, 0.25], [sigmoid(1.), 0.5, sigmoid(-0.5)]
    kl = recognition_kd(student, teacher, 'sigmoid', tau=tau)  # the defaults are the released
    expected = sum(binary_kl(p, qq) for p, qq in zip(p_t, q)) / 3
    assert kl.item() == pytest.approx(expected, rel=1e-6)
    # d/ds[c] of the mean of binary KLs: (q[c] - p_t[c]) / (tau * C)
    kl.sum().backward()
    grad = [(qq - p) / (tau * 3) for p, qq in zip(p_t, q)]
    assert torch.allclose(student.grad, torch.tensor([grad]), atol=1e-7)
    # a student at the teacher's logits: zero loss (the softmax target would not give 0)
    assert recognition_kd(teacher.clone(), teacher, 'sigmoid', tau=tau).item() == \
        pytest.approx(0.0, abs=1e-7)
    # The released code swaps (p, 1 - p) at the ground-truth class of both distributions;
    # KL(p || q) = KL(1 - p || 1 - q) for a binary KL, so the swap changes nothing and this
    # port takes no label (the hand values above are the released code's).


def test_reduce_positives_avg_factor_counts_an_image_without_positives_as_one():
    # 3 images, image 1 without positives: avg_factor = 2 + 1 + 2 = 5 (the mean divides by 4)
    per_sample = torch.tensor([1., 2., 3., 4.], requires_grad=True)
    img_inds = torch.tensor([0, 0, 2, 2])
    value = reduce_positives(per_sample, img_inds, 3, 'avg_factor')
    assert value.item() == pytest.approx(10 / 5)
    value.backward()
    assert torch.allclose(per_sample.grad, torch.full((4, ), 1 / 5))
    assert reduce_positives(per_sample, img_inds, 3, 'mean').item() == pytest.approx(2.5)
    # every image with positives: the two agree
    assert reduce_positives(per_sample, torch.tensor([0, 0, 1, 1]), 2).item() == \
        pytest.approx(2.5)
    empty = reduce_positives(torch.zeros(0, requires_grad=True), img_inds[:0], 2)
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="normalize must be one of"):
        reduce_positives(per_sample, img_inds, 3, 'sum')


def test_localization_l1_matches_hand_computed_values():
    pred = [torch.full((1, 1, 2, 2), 3.), torch.tensor([[[[1., 2.], [3., 4.]]]])]
    gt = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)]
    # layer 1 unpooled: |3| everywhere; layer 2 pooled to 1x1: |2.5|; mean over layers 2.75
    assert localization_l1(pred, gt, [None, 1]).item() == pytest.approx(2.75)
    # the released combination, layer 1 the crop pixels: 3 + 2.5
    assert localization_l1(pred, gt, [None, 1], 'input_plus_mean',
                           [True, False]).item() == pytest.approx(5.5)


def test_localization_l1_released_combination_value_and_gradient():
    # Two samples; pixels (1 x 3 x 5, odd and not square) plus two feature layers: the pixel
    # term plus the MEAN of the feature terms (the released code averages its feature layers,
    # then adds the pixels). Sample 0: pixels all +2 (term 2); feature a: (1, -3) (term 2);
    # feature b: 4 at one of 3 x 1 positions (term 4/3). Sample 1: all zero differences.
    pix = torch.zeros(2, 1, 3, 5)
    pix[0] = 2.
    feat_a = torch.zeros(2, 2, 1, 1)
    feat_a[0, :, 0, 0] = torch.tensor([1., -3.])
    feat_b = torch.zeros(2, 1, 3, 1)
    feat_b[0, 0, 1, 0] = 4.
    preds = [t.clone().requires_grad_() for t in (pix, feat_a, feat_b)]
    gts = [torch.zeros_like(t) for t in (pix, feat_a, feat_b)]
    value = localization_l1(preds, gts, [None, None, None], 'input_plus_mean',
                            [True, False, False])
    assert torch.allclose(value, torch.tensor([2 + (2 + 4 / 3) / 2, 0.]))
    value[0].backward()
    # d/d element: sign / (elements of the layer), halved for the two averaged feature layers
    assert torch.allclose(preds[0].grad[0], torch.full((1, 3, 5), 1 / 15))
    assert torch.allclose(preds[1].grad[0, :, 0, 0], torch.tensor([1 / 4, -1 / 4]))
    assert torch.allclose(preds[2].grad[0, 0, :, 0], torch.tensor([0., 1 / 6, 0.]))
    assert preds[0].grad[1].abs().sum() == 0  # sample 1 takes nothing from sample 0
    # this port's earlier reading: the mean of the three terms
    assert localization_l1(preds, gts, [None] * 3)[0].item() == \
        pytest.approx((2 + 2 + 4 / 3) / 3)
    with pytest.raises(ValueError, match='combine must be one of'):
        localization_l1(preds, gts, [None] * 3, 'sum')


def test_localization_gradient_moves_the_predicted_box_towards_the_ground_truth():
    # A horizontal ramp (value = pixel column): the crop of a box shifted right by 0.5 reads
    # 0.5 more at every pixel, so L1 = 0.5; each sample's px = x1 + t (x2 - x1) - 0.5 gives
    # d L1 / d x1 = mean(1 - t) = 0.5 and d L1 / d x2 = mean(t) = 0.5; y has no effect.
    ramp = torch.arange(8.).expand(8, 8)[None, None]
    gt = torch.tensor([[2., 2., 5., 5.]])
    pred = (gt + torch.tensor([[0.5, 0., 0.5, 0.]])).requires_grad_()
    inds = torch.tensor([0])
    loss = localization_l1([crop_and_resize(ramp, pred, inds, 4)],
                           [crop_and_resize(ramp, gt, inds, 4)], [None])
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert torch.allclose(pred.grad, torch.tensor([[0.5, 0., 0.5, 0.]]))


def build_tiny_teacher():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_cls_teacher.py'))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMENGINE_MODELS.build(cfg.model).eval().requires_grad_(False)


def test_localization_through_a_frozen_teacher_pulls_a_box_onto_the_ground_truth():
    # A smooth image (a Gaussian blob and two ramps): gradient descent on the box alone, with
    # the L1 of the tiny teacher's input and first-stage features, moves the offset box onto
    # the ground truth (12, 12, 36, 36) (the teacher's weights get no gradient).
    teacher = build_tiny_teacher()
    yy, xx = torch.meshgrid(torch.arange(48.) + 0.5, torch.arange(48.) + 0.5, indexing='ij')
    image = torch.stack([torch.exp(-((xx - 24)**2 + (yy - 24)**2) / 200.), xx / 48,
                         yy / 48])[None]
    gt = torch.tensor([[12., 12., 36., 36.]])
    box = torch.tensor([[16., 9., 41., 33.]], requires_grad=True)
    layers, inds = ['input', 'backbone.layer1'], torch.tensor([0])

    def features(b):
        return probe_layers(teacher, crop_and_resize(image, b, inds, 16), layers,
                            lambda model, x: model(x, mode='tensor'))
    with torch.no_grad():
        target = features(gt)
    optim = torch.optim.SGD([box], lr=50.0)
    history = []
    for _ in range(20):
        feats = features(box)
        loss = localization_l1([feats[n] for n in layers], [target[n] for n in layers], [4, 4])
        history.append(loss.item())
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert history[-1] < 0.3 * history[0], history
    assert (box.detach() - gt).abs().max() < 1.5, box
    assert all(p.grad is None for p in teacher.parameters())


def test_loss_config_errors_name_the_fix():
    with pytest.raises(ValueError, match='both None'):
        Cls2DetLoss(recognition=None, localization=None)
    with pytest.raises(ValueError, match='one entry per layer'):
        Cls2Det(localization=dict(layers=['input', 'backbone.layer1'], pool_sizes=[4]))
    with pytest.raises(ValueError, match='unknown keys'):
        Cls2DetLoss(recognition=dict(T=2.0))
    with pytest.raises(ValueError, match='recognition.class_reduction must be one of'):
        Cls2DetLoss(recognition=dict(class_reduction='max'))
    with pytest.raises(ValueError, match='recognition.normalize must be one of'):
        Cls2DetLoss(recognition=dict(normalize='positives'))
    with pytest.raises(ValueError, match='recognition.teacher_target must be one of'):
        Cls2DetLoss(recognition=dict(teacher_target='head'))
    with pytest.raises(ValueError, match='localization.combine must be one of'):
        Cls2DetLoss(localization=dict(combine='sum'))


def test_defaults_are_the_released_recipe():
    loss = Cls2Det.from_model_cfg(Config(dict(
        distill_stages=dict(cls2det=dict(type='Cls2DetStage')),
        distill_losses=dict(loss_cls2det=dict(type='Cls2DetLoss')))))
    assert loss.clamp_boxes and (loss.crop_size, loss.context) == (112, 0.0)
    assert loss.recognition == dict(tau=2.0, loss_weight=0.4, teacher_target=None,
                                    class_reduction='mean', normalize='avg_factor')
    assert loss.localization == dict(layers=['input', 'backbone.maxpool'], pool_sizes=[4, 8],
                                     loss_weight=0.15, max_samples=None,
                                     combine='input_plus_mean')


# ------------------------------------------------------------------ positives
def build_detector(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMENGINE_MODELS.build(cfg.model)


def two_boxes():
    return InstanceData(bboxes=torch.tensor([[4., 4., 28., 28.], [30., 26., 62., 58.]]),
                        labels=torch.tensor([2, 0]))


def test_anchor_positives_are_the_heads_own_assignment():
    detector = build_detector('tiny_det_student')
    head = detector.bbox_head
    sizes = [(8, 8), (4, 4), (2, 2)]
    cls_scores = [torch.randn(2, 3, *s) for s in sizes]
    bbox_preds = [torch.randn(2, 4, *s, requires_grad=True) for s in sizes]
    gts = [two_boxes(), InstanceData(bboxes=two_boxes().bboxes[1:], labels=torch.tensor([1]))]
    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    pos = detector_positives(detector, dict(cls_scores=cls_scores, bbox_preds=bbox_preds,
                                            batch_gt_instances=gts, batch_img_metas=metas))
    assert pos.activation == 'sigmoid' and pos.num_classes == 3
    # mmdet's own targets: the positive anchors of each image and their labels
    anchors, valid = head.get_anchors(sizes, metas, device='cpu')
    labels = head.get_targets(anchors, valid, gts, metas)[0]  # per level, (N, anchors)
    labels = torch.cat(labels, dim=1)
    for i in range(2):
        mine = pos.img_inds == i
        expected = labels[i][labels[i] < 3]
        assert mine.sum() == len(expected) > 0
        assert torch.equal(gts[i].labels[pos.gt_inds[mine]], expected)
        assert torch.equal(pos.gt_boxes[mine], gts[i].bboxes[pos.gt_inds[mine]])
    # image 0 has positives of both of its boxes
    assert set(pos.gt_inds[pos.img_inds == 0].tolist()) == {0, 1}
    # predicted boxes are the decoded deltas, with their gradient
    pos.pred_boxes.sum().backward()
    assert sum(b.grad.abs().sum() for b in bbox_preds) > 0


def test_fcos_positives_recover_the_ground_truth_of_each_point():
    from mmdet.models.dense_heads import FCOSHead
    with DefaultScope.overwrite_default_scope('mmdet'):  # a Runner of another test may have
        head = FCOSHead(num_classes=3, in_channels=8, feat_channels=8,  # left another scope
                        stacked_convs=1, strides=[8, 16], regress_ranges=((-1, 24), (24, 1e8)),
                        norm_on_bbox=True, norm_cfg=None)
    detector = nn.Module()
    detector.bbox_head = head
    outs = head([torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4)])
    pos = detector_positives(detector, dict(cls_scores=outs[0], bbox_preds=outs[1],
                                            centernesses=outs[2],
                                            batch_gt_instances=[two_boxes()]))
    assert len(pos.img_inds) > 0
    points = head.prior_generator.grid_priors([(8, 8), (4, 4)], device='cpu')
    # the small box (24 px) is on level 0 (range -1..24), the large one (32 px) on level 1
    assert set(pos.gt_inds.tolist()) == {0, 1}
    assert torch.equal(pos.gt_boxes, two_boxes().bboxes[pos.gt_inds])
    labels = torch.cat(head.get_targets(points, [two_boxes()])[0])
    assert torch.equal(two_boxes().labels[pos.gt_inds], labels[labels < 3])


def test_unsupported_head_is_refused_by_name():
    from mmdet.models.dense_heads import ATSSHead
    detector = nn.Module()
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector.bbox_head = ATSSHead(num_classes=3, in_channels=8, stacked_convs=1,
                                      feat_channels=8, norm_cfg=None)
    with pytest.raises(TypeError, match='does not support the head ATSSHead; supported: '
                       'one-stage bbox_head .*FCOSHead.* two-stage roi_head'):
        detector_positives(detector, {})


# ------------------------------------------------------------------ recorder
def test_method_inputs_recorder_binds_arguments_by_name():
    class Head(nn.Module):
        def loss_and_target(self, cls_score, bbox_pred, rois=None, scale=2):
            return cls_score * scale

    model = nn.Module()
    model.head = Head()
    recorder = MethodInputsRecorder('head.loss_and_target')
    recorder.prepare(model)
    model.head.loss_and_target(1, bbox_pred=2)  # not recording: nothing kept
    recorder.recording = True
    assert model.head.loss_and_target(3, bbox_pred=4, rois=5) == 6
    assert recorder.get_record_data() == dict(cls_score=3, bbox_pred=4, rois=5, scale=2)
    recorder.remove()
    assert 'loss_and_target' not in vars(model.head)


# ------------------------------------------------------------------ in the distiller
class MeanColourTeacher(nn.Module):
    """A frozen 'classifier' whose logits are the mean colour of its input crop."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 3, 1))
        nn.init.eye_(self.backbone[0].weight.view(3, 3))
        nn.init.zeros_(self.backbone[0].bias)
        self.requires_grad_(False)

    def forward(self, x, mode='tensor'):
        return self.backbone(x).mean(dim=(2, 3))


def test_each_positive_gets_the_teacher_distribution_of_its_own_box():
    detector = build_detector('tiny_det_student')
    # image 0: box 0 (label 2) painted (1, 0, 0), box 1 (label 0) painted (0, 0, 2)
    images = torch.zeros(1, 3, 64, 64)
    images[0, 0, 4:28, 4:28] = 1.0
    images[0, 2, 26:58, 30:62] = 2.0
    sample = InstanceData(metainfo=dict(img_shape=(64, 64)))
    sample.gt_instances = two_boxes()
    sizes = [(8, 8), (4, 4), (2, 2)]
    head_inputs = dict(cls_scores=[torch.zeros(1, 3, *s) for s in sizes],
                       bbox_preds=[torch.zeros(1, 4, *s) for s in sizes],
                       batch_gt_instances=[two_boxes()],
                       batch_img_metas=[dict(img_shape=(64, 64), pad_shape=(64, 64))])
    loss = Cls2Det(crop_size=8, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, [sample])['loss_rec']
    # A student at 0 is sigmoid 0.5 for every class; the teacher of box 0 sees exactly its
    # colour (1, 0, 0) and of box 1 (0, 0, 2). The paint of box 1 reaches into box 0's crop?
    # No: box 0 ends at y = 28, x = 28 and box 1 starts at x = 30.
    pos = detector_positives(detector, head_inputs)
    # one image: the released avg_factor is the number of positives
    per_box = [binary_kl_mean_to_half([1., 0., 0.]), binary_kl_mean_to_half([0., 0., 2.])]
    expected = sum(per_box[g] for g in pos.gt_inds.tolist()) / len(pos.gt_inds)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert per_box[0] != pytest.approx(per_box[1])  # the two boxes really differ


def paint(image, box, colour):
    x1, y1, x2, y2 = (int(v) for v in box)
    image[:, y1:y2, x1:x2] = torch.tensor(colour).view(3, 1, 1)


def binary_kl_mean_to_half(logits):
    """The released kl-bce at tau 1 of teacher logits to a student at 0: the binary KL of
    sigmoid(t[c]) to sigmoid(0) = 0.5, mean over the classes."""
    return sum(binary_kl(sigmoid(t), 0.5) for t in logits) / len(logits)


def two_image_batch():
    """Image 0: one box (label 1) painted (0, 2, 0); image 1: the two boxes of two_boxes(),
    (1, 0, 0) and (0, 0, 2). The same box index means another box in each image."""
    one_box = InstanceData(bboxes=torch.tensor([[4., 4., 28., 28.]]), labels=torch.tensor([1]))
    gts = [one_box, two_boxes()]
    colours = {(0, 0): (0., 2., 0.), (1, 0): (1., 0., 0.), (1, 1): (0., 0., 2.)}
    images = torch.zeros(2, 3, 64, 64)
    for (img, box), colour in colours.items():
        paint(images[img], gts[img].bboxes[box], colour)
    sizes = [(8, 8), (4, 4), (2, 2)]
    head_inputs = dict(cls_scores=[torch.zeros(2, 3, *s) for s in sizes],
                       bbox_preds=[torch.zeros(2, 4, *s) for s in sizes],
                       batch_gt_instances=gts,
                       batch_img_metas=[dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2)
    samples = []
    for gt in gts:
        sample = InstanceData(metainfo=dict(img_shape=(64, 64), scale_factor=(2.0, 2.0)))
        sample.gt_instances = gt
        samples.append(sample)
    return head_inputs, images, samples, colours


def test_positives_of_each_image_get_their_own_images_box():
    # Per-image ground-truth indices restart at 0: a positive of image 1's box 0 must get the
    # teacher's view of image 1's box 0, not of the batch's first box (image 0's).
    detector = build_detector('tiny_det_student')
    head_inputs, images, samples, colours = two_image_batch()
    loss = Cls2Det(crop_size=8, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    pos = detector_positives(detector, head_inputs)
    keys = list(zip(pos.img_inds.tolist(), pos.gt_inds.tolist()))
    assert {k[0] for k in keys} == {0, 1} and (1, 0) in keys
    # both images have positives: the released avg_factor is the number of positives
    expected = sum(binary_kl_mean_to_half(colours[k]) for k in keys) / len(keys)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # what the batch's rows without the per-image offset would have given: really different
    rows = [(0, 0), (1, 0), (1, 1)]
    wrong = sum(binary_kl_mean_to_half(colours[rows[g]]) for _, g in keys) / len(keys)
    assert wrong != pytest.approx(expected, rel=1e-3)


def test_boxes_under_min_size_of_the_original_image_are_not_distilled():
    # scale_factor 2: the 24 px boxes were 12 px and the 32 px box 16 px in the original image
    detector = build_detector('tiny_det_student')
    head_inputs, images, samples, colours = two_image_batch()
    loss = Cls2Det(crop_size=8, min_size=14, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    # only image 1's box 1 (32 px) is left; its positives all get the same target, and image 0,
    # left without positives, counts 1 in the released avg_factor
    pos = detector_positives(detector, head_inputs)
    kept = int(((pos.img_inds == 1) & (pos.gt_inds == 1)).sum())
    assert kept > 0
    assert value.item() == pytest.approx(
        binary_kl_mean_to_half(colours[(1, 1)]) * kept / (kept + 1), rel=1e-5)
    loss.recognition['normalize'] = 'mean'  # this port's earlier reading: mean over the kept
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    assert value.item() == pytest.approx(binary_kl_mean_to_half(colours[(1, 1)]), rel=1e-5)
    loss.min_size = 17.0  # no box left: a zero that keeps the graph
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    assert value.item() == 0.0


def test_a_batch_without_ground_truth_gives_zero_losses_and_runs_no_teacher():
    detector = build_detector('tiny_det_student')
    head_inputs, images, _, _ = two_image_batch()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    head_inputs['batch_gt_instances'] = [empty, empty]
    samples = [argparse.Namespace(gt_instances=empty, metainfo={}) for _ in range(2)]
    teacher = MeanColourTeacher()
    calls = []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    losses = Cls2Det(crop_size=8)(head_inputs, detector, teacher, images, samples)
    assert {k: v.item() for k, v in losses.items()} == dict(loss_rec=0.0, loss_loc=0.0)
    assert calls == []


def test_class_map_out_of_range_is_refused():
    loss = Cls2Det(class_map=[0, -1, 2])  # -1 would silently be the last class
    with pytest.raises(ValueError, match='class_map must give one classifier id'):
        loss._teacher_logits(torch.zeros(2, 5), 3)


def test_anchor_head_with_a_random_sampler_is_refused():
    from mmdet.models.task_modules.samplers import RandomSampler
    detector = build_detector('tiny_det_student')
    detector.bbox_head.sampler = RandomSampler(num=16, pos_fraction=0.5)
    head_inputs = two_image_batch()[0]
    with pytest.raises(ValueError, match='RetinaHead samples with RandomSampler.*PseudoSampler'):
        detector_positives(detector, head_inputs)


def test_roi_positives_are_the_roi_heads_own_targets():
    from mmdet.structures.bbox import bbox2roi
    detector = build_detector('tiny_det_faster_rcnn')
    roi_head = detector.roi_head
    bbox_head = roi_head.bbox_head
    gts = [two_boxes(), InstanceData(bboxes=two_boxes().bboxes[1:], labels=torch.tensor([1]))]
    g = torch.Generator().manual_seed(0)
    results = []
    torch.manual_seed(0)  # the RandomSampler
    for gt in gts:  # proposals: jittered ground truths and random boxes
        jitter = gt.bboxes.repeat(6, 1) + torch.randn(6 * len(gt), 4, generator=g) * 3
        xy = torch.rand(20, 2, generator=g) * 40
        rand = torch.cat([xy, xy + 8 + torch.rand(20, 2, generator=g) * 16], dim=1)
        proposals = InstanceData(priors=torch.cat([jitter, rand]))
        assigned = roi_head.bbox_assigner.assign(proposals, gt)
        results.append(roi_head.bbox_sampler.sample(assigned, proposals, gt))
    rois = bbox2roi([r.priors for r in results])
    num = len(rois)
    cls_score = torch.randn(num, 4, generator=g)
    bbox_pred = torch.randn(num, 12, generator=g, requires_grad=True)
    pos = detector_positives(detector, dict(cls_score=cls_score, bbox_pred=bbox_pred,
                                            rois=rois, sampling_results=results))
    # mmdet's own targets: the positive rows and their labels
    labels = bbox_head.get_targets(results, roi_head.train_cfg, concat=True)[0]
    rows = (labels < 3).nonzero().squeeze(1)
    assert len(pos.img_inds) == len(rows) > 0
    assert torch.equal(pos.img_inds, rois[rows, 0].long())
    assert torch.equal(pos.logits, cls_score[rows])
    for i in range(2):
        mine = pos.img_inds == i
        assert torch.equal(gts[i].labels[pos.gt_inds[mine]], labels[rows][mine])
    # the boxes are the decoded deltas of the assigned class, as mmdet decodes them
    deltas = bbox_pred.view(num, 3, 4)[rows, labels[rows]]
    expected = bbox_head.bbox_coder.decode(rois[rows, 1:], deltas)
    assert torch.allclose(pos.pred_boxes, expected)
    pos.pred_boxes.sum().backward()
    touched = bbox_pred.grad.view(num, 3, 4).abs().sum(-1) > 0  # (rows, classes)
    assert touched.sum() == len(rows)
    assert touched[rows, labels[rows]].all()


def build_distiller(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    model.student['_scope_'] = 'mmdet'
    torch.manual_seed(0)
    return build_own(MODELS, model)


def det_batch(model, n=2, seed=0):
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             pad_shape=(64, 64), batch_input_shape=(64, 64),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = two_boxes()
        samples.append(sample)
    inputs = list(torch.rand(n, 3, 64, 64, generator=g) * 255)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def test_gradients_reach_the_student_heads_but_not_the_teacher():
    model = build_distiller('tiny_det_cls2det')
    model.train()
    losses = model(**det_batch(model), mode='loss')
    head = model.student.bbox_head
    losses['distill.loss_cls2det.loss_loc'].backward(retain_graph=True)
    # localization trains the box regression only (through the frozen teacher)
    assert head.retina_reg.weight.grad.abs().sum() > 0
    assert head.retina_cls.weight.grad is None
    losses['distill.loss_cls2det.loss_rec'].backward()
    assert head.retina_cls.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())


def test_the_teacher_gets_the_batch_in_its_own_normalisation():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_det_cls2det.py'))
    model = copy.deepcopy(cfg.model)
    model.type = 'SingleTeacherDistiller'
    model.student['_scope_'] = 'mmdet'
    model.teacher['data_preprocessor'] = dict(type='ClsDataPreprocessor', mean=[0., 0., 0.],
                                              std=[255., 255., 255.], to_rgb=True)
    model = build_own(MODELS, model).train()
    seen = {}
    provider, adapt = model.teacher_provider, model.teacher_provider.teacher_inputs
    provider.teacher_inputs = lambda x: seen.setdefault('teacher_inputs', adapt(x))
    model.distill_stages['cls2det'].register_forward_pre_hook(
        lambda m, args: seen.update(student=args[0].student, teacher=args[0].teacher.teacher))
    data = det_batch(model)
    model(**data, mode='loss')
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    # both swap BGR to RGB: the teacher's batch is the RGB pixels / 255
    assert torch.allclose(seen['teacher_inputs'], (data['inputs'] * std + mean) / 255.,
                          atol=1e-5)
    assert seen['student'] is model.student and seen['teacher'] is model.teacher


@pytest.mark.parametrize('name', ['tiny_det_cls2det', 'tiny_det_cls2det_faster_rcnn'])
def test_a_few_steps_lower_the_distillation_loss(name):
    model = build_distiller(name)
    model.train()
    data = det_batch(model)
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005)
    history = []
    for _ in range(5):
        torch.manual_seed(0)  # the same RoI sampling every step (Faster R-CNN)
        losses = model(**data, mode='loss')
        # the distillation losses alone: the tiny random detectors' own losses would swamp
        # (and, at this learning rate, destabilise) what this test is about
        distill = sum(v for k, v in losses.items() if k.startswith('distill.'))
        history.append(distill.item())
        optim.zero_grad()
        distill.backward()
        optim.step()
    assert history[-1] < 0.7 * history[0], history


def test_channels_last_crops_give_the_nchw_losses_and_gradients():
    def losses_and_grads(channels_last):
        model = build_distiller('tiny_det_cls2det')
        model.train()
        model.teacher_provider.runtime.channels_last = channels_last
        model.distill_stages['cls2det'].max_samples = None  # no random subset: same samples
        losses = model(**det_batch(model), mode='loss')
        total = (losses['distill.loss_cls2det.loss_rec'] +
                 losses['distill.loss_cls2det.loss_loc'])
        head = model.student.bbox_head
        grads = torch.autograd.grad(total, [head.retina_cls.weight, head.retina_reg.weight])
        conv = next(m for m in model.teacher.modules() if isinstance(m, nn.Conv2d))
        return total.detach(), grads, conv.weight
    total_cl, grads_cl, weight_cl = losses_and_grads(True)
    total, grads, weight = losses_and_grads(False)
    assert weight_cl.is_contiguous(memory_format=torch.channels_last)
    assert not weight_cl.is_contiguous() and weight.is_contiguous()
    assert torch.allclose(total_cl, total, rtol=1e-4, atol=1e-6)
    for a, b in zip(grads_cl, grads):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-6)


# ------------------------------------------------------------------ the released computation
def gt_sample(boxes):
    gt = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
                      labels=torch.zeros(len(boxes), dtype=torch.long))
    return argparse.Namespace(gt_instances=gt, metainfo={})


def positives(img_inds, gt_inds, logits, pred_boxes, activation, num_classes=3):
    return DetPositives(torch.tensor(img_inds), torch.tensor(gt_inds), logits, pred_boxes,
                        pred_boxes.detach().clone(), activation, num_classes)


def recognition_batch():
    """Three 9 x 13 images (odd, not square): image 0 box A painted (1, 0, 0), image 1 a box
    without positives, image 2 box B painted (0, 0, 2). With 4 x 4 crops of boxes at least
    4 px wide every sample lies on painted pixel centres: the teacher's logits are the colours."""
    images = torch.zeros(3, 3, 9, 13)
    paint(images[0], (1, 1, 6, 8), (1., 0., 0.))
    paint(images[2], (4, 2, 12, 7), (0., 0., 2.))
    samples = [gt_sample([[1, 1, 6, 8]]), gt_sample([[2, 2, 8, 8]]),
               gt_sample([[4, 2, 12, 7]])]
    colours = [[1., 0., 0.], [1., 0., 0.], [0., 0., 2.]]  # per positive: A, A, B
    return images, samples, colours


def test_recognition_of_a_softmax_head_is_the_released_value_and_gradient():
    # Released (SSD): w * tau^2 * sum_p KL(p_t || softmax(s / tau)) / avg_factor, p_t the
    # teacher's softmax over C = 3 classes and 0 on background, avg_factor = 2 + 1 + 1 = 4
    # (image 1 has no positive and counts 1). Gradient d/ds = w * tau * (q - p_t) / avg_factor.
    images, samples, colours = recognition_batch()
    logits = torch.tensor([[0.5, -1., 2., 0.], [0., 0., 0., 0.], [1., 1., -2., 3.]],
                          requires_grad=True)
    pos = positives([0, 0, 2], [0, 0, 0], logits, torch.zeros(3, 4), 'softmax')
    tau, weight = 2.0, 0.4
    loss = Cls2Det(crop_size=4, recognition=dict(tau=tau, loss_weight=weight),
                       localization=None)
    value = loss.loss_by_positives(pos, MeanColourTeacher(), images, samples)['loss_rec']

    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]
    kls, grads = [], []
    for row, colour in zip(logits.tolist(), colours):
        p = softmax([c / tau for c in colour]) + [0.]
        q = softmax([s / tau for s in row])
        kls.append(sum(pp * math.log(pp / qq) for pp, qq in zip(p, q) if pp > 0))
        grads.append([weight * tau * (qq - pp) / 4 for pp, qq in zip(p, q)])
    assert value.item() == pytest.approx(weight * tau**2 * sum(kls) / 4, rel=1e-5)
    value.backward()
    assert torch.allclose(logits.grad, torch.tensor(grads), atol=1e-6)
    # this port's earlier normalisation: the mean over the 3 positives
    loss.recognition['normalize'] = 'mean'
    value = loss.loss_by_positives(pos, MeanColourTeacher(), images, samples)['loss_rec']
    assert value.item() == pytest.approx(weight * tau**2 * sum(kls) / 3, rel=1e-5)


def test_recognition_of_a_sigmoid_head_is_the_released_value_and_gradient():
    # Released kl-bce: per class the binary KL of sigmoid(t / tau) to sigmoid(s / tau), mean
    # over the C = 3 classes; w * tau^2 * sum / avg_factor (4). Gradient:
    # w * tau^2 / 4 * (q - p_t) / (tau * C).
    images, samples, colours = recognition_batch()
    logits = torch.tensor([[0.5, -1., 2.], [0., 0., 0.], [1., -2., 3.]], requires_grad=True)
    pos = positives([0, 0, 2], [0, 0, 0], logits, torch.zeros(3, 4), 'sigmoid')
    tau, weight = 2.0, 0.4
    loss = Cls2Det(crop_size=4, recognition=dict(tau=tau, loss_weight=weight),
                       localization=None)
    value = loss.loss_by_positives(pos, MeanColourTeacher(), images, samples)['loss_rec']
    total, grads = 0.0, []
    for row, colour in zip(logits.tolist(), colours):
        p = [sigmoid(t / tau) for t in colour]
        q = [sigmoid(s / tau) for s in row]
        total += sum(binary_kl(pp, qq) for pp, qq in zip(p, q)) / 3
        grads.append([weight * tau**2 / 4 * (qq - pp) / (tau * 3) for pp, qq in zip(p, q)])
    assert value.item() == pytest.approx(weight * tau**2 * total / 4, rel=1e-5)
    value.backward()
    assert torch.allclose(logits.grad, torch.tensor(grads), atol=1e-7)
    # this port's earlier reading: softmax target, summed over classes, mean over positives
    loss = Cls2Det(crop_size=4, localization=None,
                       recognition=dict(tau=tau, loss_weight=weight, teacher_target='softmax',
                                        class_reduction='sum', normalize='mean'))
    value = loss.loss_by_positives(pos, MeanColourTeacher(), images, samples)['loss_rec']
    earlier = 0.0
    for row, colour in zip(logits.tolist(), colours):
        e = [math.exp(t / tau) for t in colour]
        earlier += sum(binary_kl(x / sum(e), sigmoid(s / tau)) for x, s in zip(e, row))
    assert value.item() == pytest.approx(weight * tau**2 * earlier / 3, rel=1e-5)


def ramp_localization(combine='input_plus_mean', clamp_boxes=True):
    """Localization on a 13 x 11 image whose value is the pixel column (all channels), the
    teacher's feature layer an identity (MeanColourTeacher's 1x1 conv), 4 x 4 crops; the
    crop pixels pooled 2x2, the features 4x4.
    Positive 0: ground truth (2, 1, 8, 12), prediction 0.5 px right on both sides: every
    sample reads 0.5 more, each layer's term is 0.5, d term / d(x1, x2) = (0.5, 0.5).
    Positive 1: ground truth (0, 2, 8, 10), prediction (-2, 2, 8.5, 10), clamped to
    (0, 2, 8.5, 10): sample j at t_j = (j + 0.5) / 4 reads 0.5 t_j more, term mean(0.5 t) =
    0.25, d term / d x2 = mean(t) = 0.5, and x1 (clamped) gets nothing."""
    image = torch.arange(11.).expand(3, 13, 11)[None].contiguous()
    samples = [gt_sample([[2, 1, 8, 12], [0, 2, 8, 10]])]
    pred = torch.tensor([[2.5, 1., 8.5, 12.], [-2., 2., 8.5, 10.]], requires_grad=True)
    pos = positives([0, 0], [0, 1], torch.zeros(2, 3), pred, 'sigmoid')
    loss = Cls2Det(crop_size=4, recognition=None, clamp_boxes=clamp_boxes,
                       localization=dict(layers=['input', 'backbone.0'], pool_sizes=[2, 4],
                                         loss_weight=0.15, combine=combine))
    return loss.loss_by_positives(pos, MeanColourTeacher(), image, samples)['loss_loc'], pred


def test_localization_is_the_released_value_and_gradient():
    # Released: w * sum_b (pixels_b + stem_b) / B with B = 2 positives.
    value, pred = ramp_localization()
    assert value.item() == pytest.approx(0.15 * ((0.5 + 0.5) + (0.25 + 0.25)) / 2, rel=1e-5)
    value.backward()
    expected = 0.15 / 2 * torch.tensor([[1., 0., 1., 0.], [0., 0., 1., 0.]])
    assert torch.allclose(pred.grad, expected, atol=1e-6)
    # this port's earlier combination: the mean of the two terms, half of it
    value, pred = ramp_localization(combine='mean')
    assert value.item() == pytest.approx(0.15 * (0.5 + 0.25) / 2, rel=1e-5)
    value.backward()
    assert torch.allclose(pred.grad, expected / 2, atol=1e-6)
    # unclamped, the side outside the image gets a gradient (its samples move over the ramp)
    value, pred = ramp_localization(clamp_boxes=False)
    value.backward()
    assert pred.grad[1, 0].abs() > 1e-3


def test_recognition_crops_of_boxes_across_the_border_are_clamped():
    # A box sticking out of the image: clamped, its 4 x 4 crop reads only the painted inside
    # (colour (0, 3, 0)); unclamped, the outside zeros dilute the teacher's mean colour.
    images = torch.zeros(1, 3, 9, 13)
    paint(images[0], (0, 0, 6, 5), (0., 3., 0.))
    samples = [gt_sample([[-6, -5, 6, 5]])]
    logits = torch.zeros(1, 3, requires_grad=True)
    pos = positives([0], [0], logits, torch.zeros(1, 4), 'sigmoid')
    values = {}
    for clamp in (True, False):
        loss = Cls2Det(crop_size=4, clamp_boxes=clamp, localization=None,
                           recognition=dict(tau=1.0, loss_weight=1.0))
        values[clamp] = loss.loss_by_positives(pos, MeanColourTeacher(), images,
                                               samples)['loss_rec'].item()
    assert values[True] == pytest.approx(binary_kl_mean_to_half([0., 3., 0.]), rel=1e-5)
    assert values[False] != pytest.approx(values[True], rel=1e-2)


# ------------------------------------------------------------------ the teacher's stem
def build_classifier(backbone):
    from mmpretrain.models import ImageClassifier  # noqa: F401 (registers the scope)
    cfg = dict(type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=3, in_channels=backbone.pop(
                   'out_channels_for_test'), loss=dict(type='CrossEntropyLoss')))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMENGINE_MODELS.build(cfg).eval().requires_grad_(False)


@pytest.mark.parametrize('kind', ['resnet', 'resnet_deep_stem', 'mobilenet_v2'])
def test_the_stem_path_records_the_stem_output(kind):
    # The released localization's layer 0 is the stem: conv1 -> bn1 -> relu -> maxpool of a
    # ResNet. In mmpretrain that is the output of backbone.maxpool (after backbone.stem with a
    # deep stem); MobileNetV2's stem is backbone.conv1 (conv-bn-relu6, before the first stage).
    # The probe's record must be that tensor also when the whole forward runs on (no later
    # in-place op may change it). Input 37 x 29, odd and not square.
    backbones = {
        'resnet': dict(type='ResNet', depth=18, out_channels_for_test=512),
        'resnet_deep_stem': dict(type='ResNetV1d', depth=18, out_channels_for_test=512),
        'mobilenet_v2': dict(type='MobileNetV2', widen_factor=0.5, out_channels_for_test=1280),
    }
    model = build_classifier(dict(backbones[kind]))
    backbone = model.backbone
    x = torch.randn(2, 3, 37, 29)
    with torch.no_grad():
        if kind == 'mobilenet_v2':
            path, expected = 'backbone.conv1', backbone.conv1(x)
        else:
            path = 'backbone.maxpool'
            stem = backbone.stem(x) if kind == 'resnet_deep_stem' else \
                backbone.relu(backbone.norm1(backbone.conv1(x)))
            expected = backbone.maxpool(stem)
        for stop_early in (True, False):
            feats = probe_layers(model, x, [path], lambda m, inp: m(inp, mode='tensor'),
                                 stop_early=stop_early)
            assert torch.equal(feats[path], expected)
    # ResNet: 7x7 stride-2 conv (19 x 15), 3x3 stride-2 max pool (10 x 8), 64 channels
    shape = (2, 16, 19, 15) if kind == 'mobilenet_v2' else (2, 64, 10, 8)
    assert expected.shape == shape


CLS2DET_DIR = osp.join(REPO_ROOT, 'configs', 'cls2det')
CLS2DET_CONFIGS = sorted(glob.glob(osp.join(CLS2DET_DIR, 'cls2det_*.py')))


@pytest.mark.parametrize('path', CLS2DET_CONFIGS, ids=osp.basename)
def test_paper_configs_compute_as_the_released_code(path):
    cfg = Config.fromfile(path)
    built = Cls2Det.from_model_cfg(cfg.model)
    assert built.clamp_boxes
    # the config names its terms: cls2det_rec_ recognition only, cls2det_loc_ localization
    # only, the others both (the branches below then always run where they should)
    name = osp.basename(path)
    assert (built.recognition is None) == name.startswith('cls2det_loc_')
    assert (built.localization is None) == name.startswith('cls2det_rec_')
    if built.recognition is not None:
        rec = built.recognition
        assert (rec['tau'], rec['loss_weight'], rec['normalize']) == (2.0, 0.4, 'avg_factor')
        assert rec['teacher_target'] in (None, 'sigmoid', 'softmax')
        if 'retinanet' in osp.basename(path):  # sigmoid heads: the released kl-bce
            assert (rec['teacher_target'], rec['class_reduction']) == ('sigmoid', 'mean')
    if built.localization is not None:
        loc = built.localization
        stem = 'backbone.conv1' if 'mnv2' in osp.basename(path) else 'backbone.maxpool'
        assert loc['layers'] == ['input', stem] and loc['pool_sizes'] == [4, 8]
        assert (loc['combine'], loc['loss_weight']) == ('input_plus_mean', 0.15)
    assert (built.crop_size, built.context) == (112, 0.0)


@pytest.mark.parametrize('teacher, stem, shape', [
    ('resnet50_8xb32-30e_coco-crops-112x112.py', 'backbone.maxpool', (1, 64, 28, 28)),
    ('mobilenet-v2_1xb64-24e_bccd-crops-112x112.py', 'backbone.conv1', (1, 32, 56, 56)),
])
def test_the_crop_teachers_stems_are_the_released_layer_0(teacher, stem, shape):
    # The released layer 0 of its ResNet-50 teacher, at its 112 x 112 crops: 64 x 28 x 28
    # (pooled 8x8). MobileNetV2's stem: 32 x 56 x 56.
    cfg = Config.fromfile(osp.join(CLS2DET_DIR, teacher))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMENGINE_MODELS.build(cfg.model).eval().requires_grad_(False)
    feats = probe_layers(model, torch.randn(1, 3, 112, 112), [stem],
                         lambda m, x: m(x, mode='tensor'))
    assert feats[stem].shape == shape


def test_a_config_of_the_single_loss_names_the_stage_keys():
    # Written before the stage existed: the crop and teacher keys were the loss's.
    with pytest.raises(ValueError, match=r"\['crop_size', 'localization.layers'\] are keys of "
                       r"the distiller's Cls2DetStage now.*from_stage='cls2det'"):
        Cls2DetLoss(crop_size=112, localization=dict(layers=['input'], pool_sizes=[4]))

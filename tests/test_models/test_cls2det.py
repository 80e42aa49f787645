"""Classifier-to-detector distillation: box crop, positives, losses, the tiny detectors."""
import argparse
import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch import nn

from mmstructkd.models import Cls2DetLoss, MethodInputsRecorder
from mmstructkd.models.losses.cls2det_loss import localization_l1, recognition_kd
from mmstructkd.models.ops import crop_and_resize, detector_positives, expand_boxes, probe_layers
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR


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


# ------------------------------------------------------------------ the losses
def test_recognition_kd_matches_hand_computed_values():
    # Teacher logits (ln 3, 0) -> p_t = (0.75, 0.25); a student at 0 everywhere.
    teacher = torch.tensor([[math.log(3.), 0.]])
    # softmax head, background last: q = (1/3, 1/3, 1/3); the teacher puts 0 on background.
    kl = recognition_kd(torch.zeros(1, 3), teacher, 'softmax', tau=1.0)
    assert kl.item() == pytest.approx(0.75 * math.log(0.75 * 3) + 0.25 * math.log(0.25 * 3))
    # sigmoid head: q = 0.5 per class; binary KLs of 0.75 and 0.25 vs 0.5 are equal, and the
    # loss sums the two classes.
    expected = 2 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    kl = recognition_kd(torch.zeros(1, 2), teacher, 'sigmoid', tau=1.0)
    assert kl.item() == pytest.approx(expected)
    # tau divides both: teacher (2 ln 3, 0) at tau 2 is the same p_t; student 0 stays 0.5.
    kl = recognition_kd(torch.zeros(1, 2), teacher * 2, 'sigmoid', tau=2.0)
    assert kl.item() == pytest.approx(expected)
    # a student that already agrees has no loss
    agree = torch.tensor([[math.log(0.75), math.log(0.25), -1e4]])
    assert recognition_kd(agree, teacher, 'softmax').item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match='C \\+ 1 = 3 logits'):
        recognition_kd(torch.zeros(1, 2), teacher, 'softmax')


def test_localization_l1_matches_hand_computed_values():
    pred = [torch.full((1, 1, 2, 2), 3.), torch.tensor([[[[1., 2.], [3., 4.]]]])]
    gt = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)]
    # layer 1 unpooled: |3| everywhere; layer 2 pooled to 1x1: |2.5|; mean over layers 2.75
    assert localization_l1(pred, gt, [None, 1]).item() == pytest.approx(2.75)


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
        Cls2DetLoss(localization=dict(layers=['input', 'backbone.layer1'], pool_sizes=[4]))
    with pytest.raises(ValueError, match='unknown keys'):
        Cls2DetLoss(recognition=dict(T=2.0))


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
    loss = Cls2DetLoss(crop_size=8, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, [sample])['loss_rec']
    # A student at 0 is sigmoid 0.5 for every class; the teacher of box 0 sees exactly its
    # colour (1, 0, 0) and of box 1 (0, 0, 2). The paint of box 1 reaches into box 0's crop?
    # No: box 0 ends at y = 28, x = 28 and box 1 starts at x = 30.
    pos = detector_positives(detector, head_inputs)

    def binary_kl_to_half(logits):
        p = torch.softmax(torch.tensor(logits), 0)
        return float((p * (p / 0.5).log() + (1 - p) * ((1 - p) / 0.5).log()).sum())
    per_box = [binary_kl_to_half([1., 0., 0.]), binary_kl_to_half([0., 0., 2.])]
    expected = sum(per_box[g] for g in pos.gt_inds.tolist()) / len(pos.gt_inds)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert per_box[0] != pytest.approx(per_box[1])  # the two boxes really differ


def paint(image, box, colour):
    x1, y1, x2, y2 = (int(v) for v in box)
    image[:, y1:y2, x1:x2] = torch.tensor(colour).view(3, 1, 1)


def binary_kl_sum_to_half(logits):
    """Summed binary KL of softmax(logits) to a student at sigmoid(0) = 0.5 per class."""
    p = torch.softmax(torch.tensor(logits), 0)
    return float((p * (p / 0.5).log() + (1 - p) * ((1 - p) / 0.5).log()).sum())


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
    loss = Cls2DetLoss(crop_size=8, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    pos = detector_positives(detector, head_inputs)
    keys = list(zip(pos.img_inds.tolist(), pos.gt_inds.tolist()))
    assert {k[0] for k in keys} == {0, 1} and (1, 0) in keys
    expected = sum(binary_kl_sum_to_half(colours[k]) for k in keys) / len(keys)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # what the batch's rows without the per-image offset would have given: really different
    rows = [(0, 0), (1, 0), (1, 1)]
    wrong = sum(binary_kl_sum_to_half(colours[rows[g]]) for _, g in keys) / len(keys)
    assert wrong != pytest.approx(expected, rel=1e-3)


def test_boxes_under_min_size_of_the_original_image_are_not_distilled():
    # scale_factor 2: the 24 px boxes were 12 px and the 32 px box 16 px in the original image
    detector = build_detector('tiny_det_student')
    head_inputs, images, samples, colours = two_image_batch()
    loss = Cls2DetLoss(crop_size=8, min_size=14, recognition=dict(tau=1.0, loss_weight=1.0),
                       localization=None)
    value = loss(head_inputs, detector, MeanColourTeacher(), images, samples)['loss_rec']
    # only image 1's box 1 (32 px) is left; its positives all get the same target
    assert value.item() == pytest.approx(binary_kl_sum_to_half(colours[(1, 1)]), rel=1e-5)
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
    losses = Cls2DetLoss(crop_size=8)(head_inputs, detector, teacher, images, samples)
    assert {k: v.item() for k, v in losses.items()} == dict(loss_rec=0.0, loss_loc=0.0)
    assert calls == []


def test_class_map_out_of_range_is_refused():
    loss = Cls2DetLoss(class_map=[0, -1, 2])  # -1 would silently be the last class
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
    model.distill_losses['loss_cls2det'].register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(kwargs), with_kwargs=True)
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
        loss_module = model.distill_losses['loss_cls2det']
        loss_module.channels_last = channels_last
        loss_module.localization['max_samples'] = None  # no random subset: same samples
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

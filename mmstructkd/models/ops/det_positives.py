"""The positive samples of a detector's training step, as its own assigner chose them.

For classifier-to-detector distillation every positive sample needs: its image, the
ground-truth box it was assigned to, its classification logits and its predicted box
(differentiable, so that a loss on the box reaches the box regression). Each supported head
type gets them from the inputs of its loss (recorded by ``MethodInputsRecorder``):

- anchor heads (``AnchorHead``, ``RetinaHead``, ``SSDHead``), inputs of ``bbox_head.loss_by_feat``:
  the head's anchors, ``allowed_border``, assigner and sampler are run again on the same
  ground truth (deterministic for their ``PseudoSampler``), which gives each positive anchor
  and its ground-truth index; boxes are the head's ``bbox_coder`` decoding of its deltas.
- ``FCOSHead``, inputs of ``bbox_head.loss_by_feat``: the head's own ``get_targets`` labels
  the points; FCOS does not return the ground-truth index, so it is recovered as the ground
  truth (of the same label) equal to the point's regression target box.
- two-stage ``StandardRoIHead`` (Faster R-CNN), inputs of ``roi_head.bbox_head.loss_and_target``:
  the RoI head's sampling results of this step (positives come first in each image's RoIs,
  with ``pos_assigned_gt_inds``); boxes are the bbox head's decoding of the class-specific
  (or agnostic) deltas of the assigned class.
"""
from typing import Any, Dict, List, NamedTuple

import torch
from torch import Tensor, nn

#: Head classes each path supports (exact classes: a subclass may assign differently).
ANCHOR_HEADS = ('AnchorHead', 'RetinaHead', 'SSDHead')
POINT_HEADS = ('FCOSHead', )
ROI_HEADS = ('StandardRoIHead', )


class DetPositives(NamedTuple):
    """Positive samples of one batch (P of them).

    Attributes:
        img_inds (Tensor): shape (P,), image index in the batch.
        gt_inds (Tensor): shape (P,), index of the assigned ground truth in its image.
        logits (Tensor): shape (P, C_out), classification logits (C or C + 1 columns).
        pred_boxes (Tensor): shape (P, 4), predicted ``(x1, y1, x2, y2)``, with gradient.
        gt_boxes (Tensor): shape (P, 4), the assigned ground-truth boxes.
        activation (str): ``'sigmoid'`` (C columns) or ``'softmax'`` (C + 1, background last).
        num_classes (int): C.
    """
    img_inds: Tensor
    gt_inds: Tensor
    logits: Tensor
    pred_boxes: Tensor
    gt_boxes: Tensor
    activation: str
    num_classes: int


def supported_heads_message() -> str:
    return (f'supported: one-stage bbox_head {list(ANCHOR_HEADS + POINT_HEADS)} '
            f'(RetinaNet, SSD, FCOS) and two-stage roi_head {list(ROI_HEADS)} (Faster R-CNN)')


def detection_head(detector: nn.Module) -> nn.Module:
    """The head whose positives are distilled: ``roi_head`` if present, else ``bbox_head``.

    Raises:
        TypeError: naming the head class when it is not supported.
    """
    head = getattr(detector, 'roi_head', None)
    if head is None:  # nn.Module truthiness is not "exists" (ModuleList is falsy when empty)
        head = getattr(detector, 'bbox_head', None)
    name = type(head).__name__ if head is not None else type(detector).__name__
    if type(head).__name__ not in ANCHOR_HEADS + POINT_HEADS + ROI_HEADS:
        raise TypeError(f'classifier-to-detector distillation does not support the head '
                        f'{name}; {supported_heads_message()}.')
    return head


def detector_positives(detector: nn.Module, head_inputs: Dict[str, Any]) -> DetPositives:
    """Positives of one training step of ``detector``.

    Args:
        detector (nn.Module): The student detector (its head's assigner, priors, coder).
        head_inputs (dict): The recorded arguments of the head's loss method:
            ``bbox_head.loss_by_feat`` (one-stage) or ``roi_head.bbox_head.loss_and_target``
            (two-stage), as ``MethodInputsRecorder`` records them.

    Returns:
        DetPositives: The positives, images in batch order.
    """
    head = detection_head(detector)
    kind = type(head).__name__
    if kind in ROI_HEADS:
        return _roi_positives(head, head_inputs)
    if kind in POINT_HEADS:
        return _fcos_positives(head, head_inputs)
    return _anchor_positives(head, head_inputs)


def _require(head_inputs: Dict[str, Any], keys: tuple, method: str) -> None:
    missing = [k for k in keys if k not in head_inputs]
    if missing:
        raise KeyError(f'the recorded head inputs lack {missing}: record '
                       f'dict(type="MethodInputsRecorder", source="{method}") (got keys '
                       f'{sorted(head_inputs)}).')


def _levels_to_rows(maps: List[Tensor], img: int, channels: int) -> Tensor:
    """Per-level (N, A * channels, H, W) maps of image ``img`` -> (sum H*W*A, channels), in the
    order of mmdet's priors (level, then y, x, then anchor)."""
    return torch.cat([m[img].permute(1, 2, 0).reshape(-1, channels) for m in maps])


def _gather(parts: List[tuple], activation: str, num_classes: int,
            ref: Tensor) -> DetPositives:
    if parts:
        fields = [torch.cat(f) for f in zip(*parts)]
    else:  # no positive in the batch: empty tensors that still carry the graph's dtype
        fields = [ref.new_zeros(0, dtype=torch.long), ref.new_zeros(0, dtype=torch.long),
                  ref.new_zeros(0, ref.shape[-1]), ref.new_zeros(0, 4), ref.new_zeros(0, 4)]
    return DetPositives(*fields, activation=activation, num_classes=num_classes)


def _anchor_positives(head: nn.Module, inputs: Dict[str, Any]) -> DetPositives:
    from mmdet.models.task_modules.prior_generators import anchor_inside_flags
    from mmdet.structures.bbox import get_box_tensor
    from mmengine.structures import InstanceData

    _require(inputs, ('cls_scores', 'bbox_preds', 'batch_gt_instances', 'batch_img_metas'),
             'bbox_head.loss_by_feat')
    cls_scores, bbox_preds = inputs['cls_scores'], inputs['bbox_preds']
    gts, metas = inputs['batch_gt_instances'], inputs['batch_img_metas']
    ignores = inputs.get('batch_gt_instances_ignore') or [None] * len(gts)
    if type(head.sampler).__name__ != 'PseudoSampler':
        # the sampler runs again here: a random one would pick other positives than the loss
        raise ValueError(f'{type(head).__name__} samples with {type(head.sampler).__name__}; '
                         'classifier-to-detector distillation re-runs the assignment of '
                         "one-stage heads and needs their PseudoSampler (train_cfg's sampler "
                         'unset or dict(type="PseudoSampler")).')
    device = cls_scores[0].device
    anchor_list, valid_list = head.get_anchors([c.shape[-2:] for c in cls_scores], metas,
                                               device=device)
    parts = []
    for i, gt in enumerate(gts):
        if len(gt) == 0:
            continue
        anchors = get_box_tensor(torch.cat([get_box_tensor(a) for a in anchor_list[i]]))
        inside = anchor_inside_flags(anchors, torch.cat(valid_list[i]),
                                     metas[i]['img_shape'][:2], head.train_cfg['allowed_border'])
        inside_inds = inside.nonzero().squeeze(1)
        if len(inside_inds) == 0:  # no anchor may be assigned in this image
            continue
        priors = InstanceData(priors=anchors[inside_inds])
        assigned = head.assigner.assign(priors, gt, ignores[i])
        sampled = head.sampler.sample(assigned, priors, gt)
        pos = inside_inds[sampled.pos_inds]
        logits = _levels_to_rows(cls_scores, i, head.cls_out_channels)[pos]
        deltas = _levels_to_rows(bbox_preds, i, head.bbox_coder.encode_size)[pos]
        boxes = get_box_tensor(head.bbox_coder.decode(anchors[pos], deltas))
        parts.append((pos.new_full((len(pos), ), i), sampled.pos_assigned_gt_inds.long(),
                      logits, boxes, get_box_tensor(sampled.pos_gt_bboxes)))
    activation = 'sigmoid' if head.use_sigmoid_cls else 'softmax'
    return _gather(parts, activation, head.num_classes, cls_scores[0].new_zeros(
        0, head.cls_out_channels))


def _fcos_positives(head: nn.Module, inputs: Dict[str, Any]) -> DetPositives:
    from mmdet.structures.bbox import get_box_tensor

    _require(inputs, ('cls_scores', 'bbox_preds', 'batch_gt_instances'),
             'bbox_head.loss_by_feat')
    cls_scores, bbox_preds = inputs['cls_scores'], inputs['bbox_preds']
    gts = inputs['batch_gt_instances']
    points = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores],
                                              dtype=bbox_preds[0].dtype,
                                              device=bbox_preds[0].device)
    labels_lvl, targets_lvl = head.get_targets(points, gts)
    counts = [len(p) for p in points]
    # In training with norm_on_bbox both the predictions and get_targets' targets are
    # distances divided by the level's stride; otherwise both are in pixels.
    scales = [float(s[0] if isinstance(s, (tuple, list)) else s) if head.norm_on_bbox else 1.0
              for s in head.strides]
    all_points = torch.cat(points)
    parts = []
    for i, gt in enumerate(gts):
        if len(gt) == 0:
            continue
        labels = torch.cat([lab[i * n:(i + 1) * n] for lab, n in zip(labels_lvl, counts)])
        targets = torch.cat([t[i * n:(i + 1) * n] * s
                             for t, n, s in zip(targets_lvl, counts, scales)])
        pos = ((labels >= 0) & (labels < head.num_classes)).nonzero().squeeze(1)
        target_boxes = head.bbox_coder.decode(all_points[pos], targets[pos])
        gt_boxes = get_box_tensor(gt.bboxes)
        gt_inds = _match_gt(target_boxes, labels[pos], gt_boxes, gt.labels)
        distances = torch.cat([b[i].permute(1, 2, 0).reshape(-1, 4) * s
                               for b, s in zip(bbox_preds, scales)])[pos]
        boxes = head.bbox_coder.decode(all_points[pos], distances)
        logits = _levels_to_rows(cls_scores, i, head.cls_out_channels)[pos]
        parts.append((pos.new_full((len(pos), ), i), gt_inds, logits, boxes,
                      gt_boxes[gt_inds]))
    return _gather(parts, 'sigmoid', head.num_classes,
                   cls_scores[0].new_zeros(0, head.cls_out_channels))


def _match_gt(boxes: Tensor, labels: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> Tensor:
    """Index of the ground truth each target box came from (same label, nearest box)."""
    if len(boxes) == 0:
        return labels.new_zeros(0)
    dist = (boxes[:, None, :] - gt_boxes[None, :, :]).abs().sum(-1)
    dist = dist.masked_fill(labels[:, None] != gt_labels[None, :], float('inf'))
    return dist.argmin(dim=1)


def _roi_positives(roi_head: nn.Module, inputs: Dict[str, Any]) -> DetPositives:
    from mmdet.structures.bbox import get_box_tensor

    _require(inputs, ('cls_score', 'bbox_pred', 'sampling_results'),
             'roi_head.bbox_head.loss_and_target')
    bbox_head = roi_head.bbox_head
    cls_score, bbox_pred = inputs['cls_score'], inputs['bbox_pred']
    num_classes = bbox_head.num_classes
    if cls_score.shape[1] != num_classes + 1:
        raise ValueError(f'{type(bbox_head).__name__}: expected {num_classes + 1} softmax '
                         f'scores (classes + background), got {cls_score.shape[1]}.')
    parts, start = [], 0
    for i, res in enumerate(inputs['sampling_results']):
        num_pos = len(res.pos_priors)
        rows = torch.arange(start, start + num_pos, device=cls_score.device)
        start += len(res.pos_priors) + len(res.neg_priors)  # positives come first per image
        if num_pos == 0:
            continue
        deltas = bbox_pred[rows]
        if not bbox_head.reg_class_agnostic:  # the deltas of the assigned class
            deltas = deltas.view(num_pos, -1, bbox_head.bbox_coder.encode_size)[
                torch.arange(num_pos, device=deltas.device), res.pos_gt_labels]
        boxes = get_box_tensor(bbox_head.bbox_coder.decode(get_box_tensor(res.pos_priors),
                                                           deltas))
        parts.append((rows.new_full((num_pos, ), i), res.pos_assigned_gt_inds.long(),
                      cls_score[rows], boxes, get_box_tensor(res.pos_gt_bboxes)))
    return _gather(parts, 'softmax', num_classes, cls_score.new_zeros(0, cls_score.shape[1]))

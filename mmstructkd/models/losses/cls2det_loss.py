"""Classifier-to-detector distillation (Guo, Alvarez, Salzmann, NeurIPS 2021)."""
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.models.ops import (INPUT_LAYER, DetPositives, crop_and_resize, detector_positives,
                                   expand_boxes, probe_layers)
from mmstructkd.models.ops.box_crop import clamp_boxes_to_image
from mmstructkd.registry import MODELS


#: ``recognition.teacher_target``: the target distribution of the teacher's logits.
TEACHER_TARGETS = ('sigmoid', 'softmax')
#: ``recognition.class_reduction``: how a sigmoid head's per-class binary KLs combine.
CLASS_REDUCTIONS = ('mean', 'sum')
#: ``recognition.normalize``: what the sum over positives is divided by.
NORMALIZATIONS = ('avg_factor', 'mean')
#: ``localization.combine``: how the per-layer L1 terms combine.
COMBINES = ('input_plus_mean', 'mean')


def recognition_kd(logits: Tensor, teacher_logits: Tensor, activation: str,
                   tau: float = 1.0, teacher_target: Optional[str] = None,
                   class_reduction: str = 'mean') -> Tensor:
    """KL from the teacher's class distribution to the detector's, per positive sample.

    ``'softmax'`` heads (C + 1 outputs, background last: SSD, the RoI head of Faster R-CNN):
    ``KL(p_t || softmax(s / tau))`` over the C + 1 classes with ``p_t = softmax(t / tau)``
    over the C object classes and 0 on background, so the student is also taught that the
    object is no background (the released code's ``kl-ce``).

    ``'sigmoid'`` heads (C outputs: RetinaNet, FCOS): for every class c the binary KL between
    the teacher's ``p_t[c]`` and ``sigmoid(s[c] / tau)``, combined over the classes by
    ``class_reduction``. ``teacher_target`` picks ``p_t``:

    - ``'sigmoid'`` (the default for these heads): ``sigmoid(t[c] / tau)``, each class its
      own binary target, with ``class_reduction='mean'``: the released code's ``kl-bce``
      (``mmdet_dev/models/losses/kt_cls_loss.py`` of NVlabs/DICOD). Each logit then gets the
      gradient ``(sigmoid(s[c] / tau) - p_t[c]) / (tau * C)``.
    - ``'softmax'``: ``softmax(t / tau)`` over the C classes, the classes competing as in the
      classifier's training, with ``class_reduction='sum'``: this port's earlier reading. Each
      logit gets ``(sigmoid(s[c] / tau) - p_t[c]) / tau``, as a softmax head's, so a
      ``loss_weight`` means the same for both kinds of head whatever C is.

    Probabilities enter through ``log_softmax`` / ``logsigmoid`` and ``xlogy``, not the
    released code's ``+ 1e-10`` (``kl-ce``) or clamp at ``1e-10`` (``kl-bce``): the values
    differ by less than ``1e-9`` per class; the gradients only where a probability falls
    under ``1e-10`` (``|s / tau| > 23``), where the clamp stops the released one.

    Args:
        logits (Tensor): Detector logits, shape (P, C) (sigmoid) or (P, C + 1) (softmax).
        teacher_logits (Tensor): Teacher logits over the C detection classes, shape (P, C).
        activation (str): ``'softmax'`` or ``'sigmoid'``, the head's.
        tau (float): Temperature of both. Defaults to 1.0.
        teacher_target (str, optional): ``'sigmoid'`` or ``'softmax'`` (see above); None: the
            head's own activation (the released code). A softmax head takes only
            ``'softmax'``. Defaults to None.
        class_reduction (str): ``'mean'`` or ``'sum'`` of a sigmoid head's per-class binary
            KLs; a softmax head's KL is one sum over its C + 1 classes and ignores it.
            Defaults to ``'mean'``.

    Returns:
        Tensor: shape (P,), not yet multiplied by ``tau ** 2``.
    """
    num_classes = teacher_logits.shape[1]
    target = activation if teacher_target is None else teacher_target
    if target not in TEACHER_TARGETS:
        raise ValueError(f'recognition_kd: teacher_target must be one of {TEACHER_TARGETS} or '
                         f'None (the head\'s activation), got {teacher_target!r}.')
    if class_reduction not in CLASS_REDUCTIONS:
        raise ValueError(f'recognition_kd: class_reduction must be one of {CLASS_REDUCTIONS}, '
                         f'got {class_reduction!r}.')
    t = teacher_logits.detach() / tau
    s = logits / tau
    if activation == 'softmax':
        if target != 'softmax':
            raise ValueError('recognition_kd: a softmax head distils the teacher\'s softmax '
                             '(C classes, 0 on background); set teacher_target=None or '
                             '\'softmax\' (teacher_target=\'sigmoid\' is for sigmoid heads).')
        if logits.shape[1] != num_classes + 1:
            raise ValueError(f'recognition_kd: a softmax head needs C + 1 = {num_classes + 1} '
                             f'logits (background last), got {logits.shape[1]}.')
        p_t = F.softmax(t, dim=1)
        log_q = F.log_softmax(s, dim=1)[:, :num_classes]  # the background term is 0 * log q
        return (torch.xlogy(p_t, p_t) - p_t * log_q).sum(dim=1)
    if activation != 'sigmoid':
        raise ValueError(f'activation must be "softmax" or "sigmoid", got {activation!r}')
    if logits.shape[1] != num_classes:
        raise ValueError(f'recognition_kd: a sigmoid head needs C = {num_classes} logits, got '
                         f'{logits.shape[1]}.')
    p_t = torch.sigmoid(t) if target == 'sigmoid' else F.softmax(t, dim=1)
    kl = (torch.xlogy(p_t, p_t) - p_t * F.logsigmoid(s) + torch.xlogy(1 - p_t, 1 - p_t) -
          (1 - p_t) * F.logsigmoid(-s))
    return kl.mean(dim=1) if class_reduction == 'mean' else kl.sum(dim=1)


def reduce_positives(per_sample: Tensor, img_inds: Tensor, num_images: int,
                     normalize: str = 'avg_factor') -> Tensor:
    """Reduce a per-positive loss of a batch to a scalar.

    Args:
        per_sample (Tensor): shape (P,), the loss of each positive.
        img_inds (Tensor): shape (P,), the image of each positive in the batch.
        num_images (int): N, the images of the batch (those without positives included).
        normalize (str): ``'avg_factor'``: the sum over positives divided by
            ``sum_i max(P_i, 1)`` over the N images (P_i: positives of image i), as mmdet 2's
            ``num_total_pos``, the ``avg_factor`` of the released code's recognition loss (an
            image without positives counts 1). ``'mean'``: the mean over the P positives.
            Defaults to ``'avg_factor'``.

    Returns:
        Tensor: scalar; 0 (in the graph) when there is no positive.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f'reduce_positives: normalize must be one of {NORMALIZATIONS}, got '
                         f'{normalize!r}.')
    if per_sample.numel() == 0:
        return per_sample.sum() * 0.0
    if normalize == 'mean':
        return per_sample.mean()
    counts = torch.bincount(img_inds, minlength=num_images)
    return per_sample.sum() / counts.clamp(min=1).sum().to(per_sample.dtype)


def localization_l1(pred_feats: Sequence[Tensor], gt_feats: Sequence[Tensor],
                    pool_sizes: Sequence[Optional[int]], combine: str = 'mean',
                    is_input: Optional[Sequence[bool]] = None) -> Tensor:
    """Mean absolute difference of teacher features of predicted and ground-truth crops.

    Per layer and sample, the L1 over channels and positions divided by their number (the
    released code's ``norm(p=1) / (C * h * w)``), after adaptive average pooling.

    Args:
        pred_feats (Sequence[Tensor]): Per layer, features of the predicted-box crops, shape
            (P, C_l, H_l, W_l); gradients flow back to the boxes.
        gt_feats (Sequence[Tensor]): Per layer, of the ground-truth crops, same shapes.
        pool_sizes (Sequence[int | None]): Per layer, adaptive average pooling to ``k x k``
            before the comparison (None: compare at full resolution).
        combine (str): ``'input_plus_mean'``: the terms of the input layers (``is_input``:
            the crop pixels) plus the mean of the other (teacher feature) layers' terms, the
            released code's (with its ``layer=[-1, 0]``: pixels + stem, summed).
            ``'mean'``: the mean over all layers. Defaults to ``'mean'``.
        is_input (Sequence[bool], optional): Per layer, whether it is the crop itself. None:
            none is.

    Returns:
        Tensor: shape (P,).
    """
    if combine not in COMBINES:
        raise ValueError(f'localization_l1: combine must be one of {COMBINES}, got '
                         f'{combine!r}.')
    is_input = [False] * len(pred_feats) if is_input is None else list(is_input)
    per_layer = []
    for pred, gt, k in zip(pred_feats, gt_feats, pool_sizes):
        if k is not None:
            pred, gt = F.adaptive_avg_pool2d(pred, k), F.adaptive_avg_pool2d(gt, k)
        per_layer.append((pred - gt.detach()).abs().flatten(1).mean(dim=1))
    if combine == 'mean':
        return torch.stack(per_layer).mean(dim=0)
    pixels = [term for term, inp in zip(per_layer, is_input) if inp]
    feats = [term for term, inp in zip(per_layer, is_input) if not inp]
    total = torch.stack(feats).mean(dim=0) if feats else torch.zeros_like(per_layer[0])
    for term in pixels:
        total = total + term
    return total


@MODELS.register_module()
class Cls2DetLoss(nn.Module):
    """Distils an image classifier (teacher) into a detector's positives (student).

    "Distilling Image Classifiers in Object Detectors" (Guo, Alvarez, Salzmann, NeurIPS 2021).
    The classifier was trained on object crops of the detection data
    (``tools/dataset_converters/coco_to_crops.py``). In every training step:

    - **recognition**: each ground-truth box (grown by ``context``, clamped to the image) is
      cropped from the batch the detector sees, in the teacher's normalisation, and resized to
      ``crop_size``; the teacher's class distribution of the crop is distilled
      (:func:`recognition_kd`) into the classification output of every positive sample the
      detector's own assigner gave that box (:func:`~mmstructkd.models.ops.detector_positives`);
      the sum over positives is normalised by :func:`reduce_positives`, times ``tau ** 2``;
    - **localization**: for every positive, the predicted box and its ground-truth box are
      cropped alike; the L1 difference of the teacher's early features of the two crops
      (:func:`localization_l1`) is minimised, averaged over the positives. The crop is
      differentiable in the box, and the frozen teacher passes the gradient through to it:
      the loss trains the box regression.

    The defaults are the released code's computation (NVlabs/DICOD, its SSD300 recipe);
    ``configs/cls2det/README.md`` ("Fidelity") lists each term and the keys of this port's
    earlier reading.

    The distiller passes ``student``, ``teacher`` and ``teacher_inputs`` (the batch in the
    teacher's normalisation); ``head_inputs`` is the recorded call of the head's loss
    (``MethodInputsRecorder`` on ``bbox_head.loss_by_feat``, or on
    ``roi_head.bbox_head.loss_and_target`` for Faster R-CNN).

    Args:
        crop_size (int): Side of the square crops the teacher sees. Defaults to 112.
        context (float): Each box grows by this fraction of its width/height on every side
            before cropping (as the teacher's training crops). Defaults to 0.
        min_size (float): Ground-truth boxes whose shorter side is under this many pixels of
            the original image (the box divided by the image's ``scale_factor``) are not
            distilled: their positives get neither loss and are not counted by either
            normalisation. Set it to the crop tool's ``--min-size`` of the teacher's training
            set: a box the teacher never saw at that size, stretched to ``crop_size``, gives it
            an image unlike its training crops. The released code has no such filter (0).
            Defaults to 0 (every box).
        clamp_boxes (bool): Clamp every box to the image before cropping, as the released code
            (:func:`~mmstructkd.models.ops.box_crop.clamp_boxes_to_image`: left/top at 0,
            right/bottom at the padded batch's size; a clamped side gets no gradient). False:
            crop the box as it is, outside the image reading 0 (the mean colour), so every
            side gets a gradient. Defaults to True.
        class_map (Sequence[int], optional): Classifier class id of each detection class id
            (length C). None: identity (the classifier has exactly the C detection classes).
        recognition (dict, optional): Defaults to ``dict(tau=2.0, loss_weight=0.4,
            teacher_target=None, class_reduction='mean', normalize='avg_factor')`` (the
            released SSD recipe; also the values of missing keys): the temperature, the weight,
            and for sigmoid heads the teacher's target (None: the head's activation, i.e.
            ``sigmoid(t / tau)`` per class; ``'softmax'``: ``softmax(t / tau)`` over the
            classes) and how the per-class binary KLs combine (``'mean'`` / ``'sum'``; see
            :func:`recognition_kd`), and the normalisation of the sum over positives
            (``'avg_factor'`` / ``'mean'``; see :func:`reduce_positives`). None switches it
            off.
        localization (dict, optional): Defaults to ``dict(layers=('input',
            'backbone.maxpool'), pool_sizes=(4, 8), loss_weight=0.15, max_samples=None,
            combine='input_plus_mean')`` (the released SSD recipe for an mmpretrain ResNet: the
            crop pixels and the stem's output, after its max pooling): teacher layers compared
            (``'input'`` is the crop itself; module paths otherwise, the forward stops after
            the last one), the adaptive average pooling of each (None: none), the weight, at
            most this many positives per step (a random subset, whose mean is an unbiased
            estimate of the mean over all; None: all, as the released code) and how the layer
            terms combine (``'input_plus_mean'``: pixels + mean of the feature layers, the
            released code; ``'mean'``: mean of all; see :func:`localization_l1`). Missing keys:
            those values, but ``pool_sizes=None``. None switches it off.
        channels_last (bool): Run the teacher on its crops in channels-last memory (its 4-D
            weights are converted once, in place; the teacher serves this loss only). Same
            values up to the summation order. In a one-off profile on a 2-core CPU (oneDNN;
            not a committed benchmark) the MobileNetV2 crop
            classifier took 0.76 s instead of 1.33 s for 100 ground-truth crops, and 1.40 s
            instead of 1.94 s for the localization forward + backward of 256 crops
            (``benchmarks/cls2det_bccd.py``'s setting). Defaults to True.
    """

    def __init__(self, crop_size: int = 112, context: float = 0.0, min_size: float = 0.0,
                 class_map: Optional[Sequence[int]] = None,
                 recognition: Optional[dict] = dict(tau=2.0, loss_weight=0.4),
                 localization: Optional[dict] = dict(layers=('input', 'backbone.maxpool'),
                                                     pool_sizes=(4, 8), loss_weight=0.15,
                                                     max_samples=None),
                 channels_last: bool = True, clamp_boxes: bool = True) -> None:
        super().__init__()
        if recognition is None and localization is None:
            raise ValueError('Cls2DetLoss: recognition and localization are both None; '
                             'switch on at least one.')
        self.channels_last = bool(channels_last)
        self.clamp_boxes = bool(clamp_boxes)
        self.crop_size = int(crop_size)
        self.context = float(context)
        self.min_size = float(min_size)
        self.class_map = None if class_map is None else [int(c) for c in class_map]
        self.recognition = self._check(
            recognition, dict(tau=2.0, loss_weight=0.4, teacher_target=None,
                              class_reduction='mean', normalize='avg_factor'), 'recognition')
        self.localization = self._check(
            localization, dict(layers=('input', 'backbone.maxpool'), pool_sizes=None,
                               loss_weight=0.15, max_samples=None, combine='input_plus_mean'),
            'localization')
        rec = self.recognition
        if rec is not None:
            if rec['tau'] <= 0:
                raise ValueError(f'Cls2DetLoss: recognition.tau must be positive, got '
                                 f'{rec["tau"]}')
            for key, allowed in (('teacher_target', TEACHER_TARGETS + (None, )),
                                 ('class_reduction', CLASS_REDUCTIONS),
                                 ('normalize', NORMALIZATIONS)):
                if rec[key] not in allowed:
                    raise ValueError(f'Cls2DetLoss: recognition.{key} must be one of '
                                     f'{allowed}, got {rec[key]!r}.')
        if self.localization is not None:
            loc = self.localization
            loc['layers'] = list(loc['layers'])
            if not loc['layers']:
                raise ValueError('Cls2DetLoss: localization.layers is empty.')
            pools = loc['pool_sizes']
            loc['pool_sizes'] = [None] * len(loc['layers']) if pools is None else list(pools)
            if len(loc['pool_sizes']) != len(loc['layers']):
                raise ValueError(f'Cls2DetLoss: localization.pool_sizes {pools} needs one '
                                 f'entry per layer of {loc["layers"]} (None: no pooling).')
            if loc['combine'] not in COMBINES:
                raise ValueError(f'Cls2DetLoss: localization.combine must be one of '
                                 f'{COMBINES}, got {loc["combine"]!r}.')

    @staticmethod
    def _check(cfg: Optional[dict], defaults: dict, what: str) -> Optional[dict]:
        if cfg is None:
            return None
        unknown = set(cfg) - set(defaults)
        if unknown:
            raise ValueError(f'Cls2DetLoss: {what} has unknown keys {sorted(unknown)}; '
                             f'allowed: {sorted(defaults)}')
        return {**defaults, **dict(cfg)}

    # ------------------------------------------------------------------ teacher
    def _teacher_logits(self, logits: Any, num_classes: int) -> Tensor:
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise TypeError('Cls2DetLoss: the teacher must be a classifier whose '
                            "forward(x, mode='tensor') returns logits of shape (N, K), got "
                            f'{type(logits).__name__}.')
        if self.class_map is None:
            if logits.shape[1] != num_classes:
                raise ValueError(
                    f'Cls2DetLoss: the teacher has {logits.shape[1]} classes, the detector '
                    f'{num_classes}; set class_map (classifier id of each detection class).')
            return logits
        if (len(self.class_map) != num_classes or max(self.class_map) >= logits.shape[1]
                or min(self.class_map) < 0):
            raise ValueError(f'Cls2DetLoss: class_map must give one classifier id (< '
                             f'{logits.shape[1]}) per detection class ({num_classes}), got '
                             f'{self.class_map}.')
        return logits[:, self.class_map]

    def _crops(self, images: Tensor, boxes: Tensor, img_inds: Tensor) -> Tensor:
        boxes = expand_boxes(boxes, self.context)
        if self.clamp_boxes:  # after the context: the crop is of the grown box, in the image
            boxes = clamp_boxes_to_image(boxes, images.shape[-2:])
        crops = crop_and_resize(images, boxes, img_inds, self.crop_size)
        return crops.contiguous(memory_format=torch.channels_last) if self.channels_last \
            else crops

    def _prepare_teacher(self, teacher: nn.Module) -> None:
        """Frozen-teacher check; channels-last weights (once) for channels-last crops."""
        if any(p.requires_grad for p in teacher.parameters()):
            raise ValueError('Cls2DetLoss: the teacher must be frozen (requires_grad False); '
                             'the distiller does so, a direct caller must call '
                             'teacher.requires_grad_(False).')
        if self.channels_last and not getattr(teacher, '_cls2det_channels_last', False):
            # Only 4-D tensors change; a later load_state_dict copies into this layout.
            teacher.to(memory_format=torch.channels_last)
            teacher._cls2det_channels_last = True

    # ------------------------------------------------------------------ forward
    def forward(self, head_inputs: Dict[str, Any], student: nn.Module, teacher: nn.Module,
                teacher_inputs: Tensor, data_samples: List[Any]) -> Dict[str, Tensor]:
        """Compute the losses.

        Args:
            head_inputs (dict): The recorded arguments of the head's loss method.
            student (nn.Module): The detector (its head's assigner and box coder).
            teacher (nn.Module): The frozen classifier.
            teacher_inputs (Tensor): The batch in the teacher's normalisation, (N, 3, H, W).
            data_samples (list): The batch's ``DetDataSample`` (``gt_instances``).

        Returns:
            dict[str, Tensor]: ``loss_rec`` and/or ``loss_loc`` (scalars).
        """
        return self.loss_by_positives(detector_positives(student, head_inputs), teacher,
                                      teacher_inputs, data_samples)

    def loss_by_positives(self, pos: DetPositives, teacher: nn.Module, teacher_inputs: Tensor,
                          data_samples: List[Any]) -> Dict[str, Tensor]:
        """The losses of given positives (what :meth:`forward` does after the assignment).

        Args:
            pos (DetPositives): The positives of the batch (``gt_inds`` index each image's
                ``gt_instances``).
            teacher (nn.Module): The frozen classifier.
            teacher_inputs (Tensor): The batch in the teacher's normalisation, (N, 3, H, W).
            data_samples (list): The batch's samples (``gt_instances``; ``metainfo`` with
                ``scale_factor`` when ``min_size`` is set), N of them.

        Returns:
            dict[str, Tensor]: ``loss_rec`` and/or ``loss_loc`` (scalars).
        """
        from mmdet.structures.bbox import get_box_tensor

        self._prepare_teacher(teacher)
        gts = [s.gt_instances for s in data_samples]
        device = teacher_inputs.device
        if sum(len(g) for g in gts):
            gt_boxes = torch.cat([get_box_tensor(g.bboxes) for g in gts]).to(teacher_inputs.dtype)
            gt_imgs = torch.cat([torch.full((len(g), ), i, dtype=torch.long, device=device)
                                 for i, g in enumerate(gts)])
            offsets = torch.tensor([0] + [len(g) for g in gts][:-1], device=device).cumsum(0)
            gt_rows = offsets[pos.img_inds] + pos.gt_inds  # each positive's ground-truth row
            if self.min_size > 0:
                big = self._big_enough(gt_boxes, gt_imgs, data_samples)[gt_rows]
                pos = DetPositives(*(f[big] for f in pos[:5]), pos.activation, pos.num_classes)
                gt_rows = gt_rows[big]
        if len(pos.img_inds) == 0:  # nothing to distil (no ground truth, or none kept)
            zero = pos.logits.sum() * 0.0 + pos.pred_boxes.sum() * 0.0
            return {k: zero for k, on in (('loss_rec', self.recognition),
                                          ('loss_loc', self.localization)) if on is not None}
        # The teacher sees only the ground truths that have a positive: one crop each
        used, gt_rows = torch.unique(gt_rows, return_inverse=True)
        gt_boxes, gt_imgs = gt_boxes[used], gt_imgs[used]

        loc = self.localization
        rec = self.recognition
        with torch.no_grad():  # ground-truth crops: one teacher pass for logits and features
            feats = probe_layers(teacher, self._crops(teacher_inputs, gt_boxes, gt_imgs),
                                 loc['layers'] if loc else [],
                                 lambda model, x: model(x, mode='tensor'),
                                 stop_early=rec is None)
        losses = {}
        if rec is not None:
            t_logits = self._teacher_logits(feats['__output__'], pos.num_classes)
            per_sample = recognition_kd(pos.logits, t_logits[gt_rows], pos.activation,
                                        rec['tau'], rec['teacher_target'],
                                        rec['class_reduction'])
            losses['loss_rec'] = reduce_positives(
                per_sample, pos.img_inds, len(data_samples),
                rec['normalize']) * rec['loss_weight'] * rec['tau']**2
        if loc is not None:
            losses['loss_loc'] = self._localization(pos, teacher, teacher_inputs, feats,
                                                    gt_rows) * loc['loss_weight']
        return losses

    def _localization(self, pos: DetPositives, teacher: nn.Module, teacher_inputs: Tensor,
                      gt_feats: Dict[str, Tensor], gt_rows: Tensor) -> Tensor:
        """Mean over the (kept) positives of :func:`localization_l1`, the released code's
        ``sum_b (...) / B`` over the B positives of the batch."""
        loc = self.localization
        keep = torch.arange(len(gt_rows), device=gt_rows.device)
        if loc['max_samples'] is not None and len(keep) > loc['max_samples']:
            keep = torch.randperm(len(keep), device=keep.device)[:loc['max_samples']]
        pred_crops = self._crops(teacher_inputs, pos.pred_boxes[keep], pos.img_inds[keep])
        # Outside no_grad: the frozen teacher passes the gradient through to the crops.
        pred_feats = probe_layers(teacher, pred_crops, loc['layers'],
                                  lambda model, x: model(x, mode='tensor'))
        names = loc['layers']
        per_sample = localization_l1([pred_feats[n] for n in names],
                                     [gt_feats[n][gt_rows[keep]] for n in names],
                                     loc['pool_sizes'], loc['combine'],
                                     [n == INPUT_LAYER for n in names])
        return per_sample.mean() if len(keep) else pos.pred_boxes.sum() * 0.0

    def _big_enough(self, gt_boxes: Tensor, gt_imgs: Tensor, data_samples: List[Any]) -> Tensor:
        """shape (G,): the ground truths whose shorter side in the original image (the box
        over the image's ``scale_factor``; 1 without a resize) is at least ``min_size``."""
        scales = gt_boxes.new_tensor([s.metainfo.get('scale_factor', (1.0, 1.0))[:2]
                                      for s in data_samples])[gt_imgs]  # (G, 2): w, h
        sides = (gt_boxes[:, 2:] - gt_boxes[:, :2]) / scales
        return sides.min(dim=1).values >= self.min_size

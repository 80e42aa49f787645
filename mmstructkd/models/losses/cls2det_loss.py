"""Classifier-to-detector distillation (Guo, Alvarez, Salzmann, NeurIPS 2021)."""
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.models.ops.det_positives import DetPositives
from mmstructkd.models.ops.feature_probe import INPUT_LAYER
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


class Cls2DetTargets(NamedTuple):
    """What classifier-to-detector distillation compares in one step (made by the
    ``Cls2DetStage`` of the distiller, from the detector and the teacher).

    Attributes:
        positives (DetPositives): The detector's positive samples (P of them) that are
            distilled: their logits, boxes, images.
        teacher_logits (Tensor | None): shape (P, C), the teacher's logits of each positive's
            ground-truth crop over the C detection classes; None without recognition.
        layers (list[str]): The teacher layers of ``gt_feats`` / ``pred_feats`` (``'input'``:
            the crop pixels); empty without localization.
        gt_feats (list[Tensor]): Per layer, the teacher's features of the ground-truth crops of
            the K positives localization uses, shape (K, C_l, H_l, W_l).
        pred_feats (list[Tensor]): Per layer, of their predicted-box crops (gradient to the
            boxes), same shapes.
        num_images (int): N, the images of the batch.
    """
    positives: DetPositives
    teacher_logits: Optional[Tensor]
    layers: List[str]
    gt_feats: List[Tensor]
    pred_feats: List[Tensor]
    num_images: int


@MODELS.register_module()
class Cls2DetLoss(nn.Module):
    """Distils an image classifier (teacher) into a detector's positives (student).

    "Distilling Image Classifiers in Object Detectors" (Guo, Alvarez, Salzmann, NeurIPS 2021).
    The classifier was trained on object crops of the detection data
    (``tools/dataset_converters/coco_to_crops.py``). The distiller's ``Cls2DetStage`` crops the
    boxes and runs the teacher; this loss compares (:class:`Cls2DetTargets`):

    - **recognition**: the teacher's class distribution of each ground-truth crop is distilled
      (:func:`recognition_kd`) into the classification output of every positive sample the
      detector's own assigner gave that box; the sum over positives is normalised by
      :func:`reduce_positives`, times ``tau ** 2``;
    - **localization**: for every positive, the L1 difference of the teacher's early features
      of its predicted-box crop and of its ground-truth crop (:func:`localization_l1`),
      averaged over the positives. The crop is differentiable in the box, and the frozen
      teacher passes the gradient through to it: the loss trains the box regression.

    The defaults are the released code's computation (NVlabs/DICOD, its SSD300 recipe);
    ``configs/cls2det/README.md`` ("Fidelity") lists each term and the keys of this port's
    earlier reading.

    Args:
        recognition (dict, optional): Defaults to ``dict(tau=2.0, loss_weight=0.4,
            teacher_target=None, class_reduction='mean', normalize='avg_factor')`` (the
            released SSD recipe; also the values of missing keys): the temperature, the weight,
            and for sigmoid heads the teacher's target (None: the head's activation, i.e.
            ``sigmoid(t / tau)`` per class; ``'softmax'``: ``softmax(t / tau)`` over the
            classes) and how the per-class binary KLs combine (``'mean'`` / ``'sum'``; see
            :func:`recognition_kd`), and the normalisation of the sum over positives
            (``'avg_factor'`` / ``'mean'``; see :func:`reduce_positives`). None switches it
            off.
        localization (dict, optional): Defaults to ``dict(pool_sizes=(4, 8), loss_weight=0.15,
            combine='input_plus_mean')`` (the released SSD recipe, with the stage's layers
            ``('input', 'backbone.maxpool')``): the adaptive average pooling of each of the
            stage's layers (None: none), the weight, and how the layer terms combine
            (``'input_plus_mean'``: pixels + mean of the feature layers, the released code;
            ``'mean'``: mean of all; see :func:`localization_l1`). Missing keys: those values,
            but ``pool_sizes=None``. None switches it off.
    """

    #: Where the distiller's mappings find the arguments that are no recorded tensors.
    ARG_SOURCES = dict(targets="the Cls2DetStage: distill_stages=dict(cls2det=dict("
                       "type='Cls2DetStage', ...)) and targets=dict(from_stage='cls2det', "
                       "output='targets')")

    def __init__(self, recognition: Optional[dict] = dict(tau=2.0, loss_weight=0.4),
                 localization: Optional[dict] = dict(pool_sizes=(4, 8), loss_weight=0.15),
                 **moved: object) -> None:
        super().__init__()
        moved_loc = sorted(set(localization or {}) & {'layers', 'max_samples'})
        if moved or moved_loc:
            raise ValueError(
                f'Cls2DetLoss: {sorted(moved) + [f"localization.{k}" for k in moved_loc]} are '
                "keys of the distiller's Cls2DetStage now, which does the model work (crops, "
                "teacher): distill_stages=dict(cls2det=dict(type='Cls2DetStage', crop_size=..., "
                'context=..., min_size=..., clamp_boxes=..., class_map=..., layers=..., '
                "max_samples=...)), stage_forward_mappings=dict(cls2det=dict(head_inputs=<the "
                "head recorder's mapping>)), and loss_forward_mappings=dict(loss_cls2det=dict("
                "targets=dict(from_stage='cls2det', output='targets'))); channels_last is "
                "teacher_runtime=dict(channels_last=True). See configs/cls2det/*.py.")
        if recognition is None and localization is None:
            raise ValueError('Cls2DetLoss: recognition and localization are both None; '
                             'switch on at least one.')
        self.recognition = self._check(
            recognition, dict(tau=2.0, loss_weight=0.4, teacher_target=None,
                              class_reduction='mean', normalize='avg_factor'), 'recognition')
        self.localization = self._check(
            localization, dict(pool_sizes=None, loss_weight=0.15, combine='input_plus_mean'),
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
            if loc['pool_sizes'] is not None:
                loc['pool_sizes'] = list(loc['pool_sizes'])
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

    def check_stage(self, stage: nn.Module) -> None:
        """Refuse a ``Cls2DetStage`` that does not make what this loss compares (the
        distiller calls it when it is built)."""
        self.check_targets(stage.recognition, stage.layers)

    def check_targets(self, recognition: bool, layers: Optional[Sequence[str]]) -> None:
        """Refuse targets without what this loss compares.

        Args:
            recognition (bool): Whether the stage computes the teacher's logits.
            layers (Sequence[str], optional): The teacher layers it probes (None: none).
        """
        if self.recognition is not None and not recognition:
            raise ValueError('Cls2DetLoss: recognition is on, but its Cls2DetStage has '
                             'recognition=False; switch it on there or set recognition=None.')
        if self.localization is None:
            return
        if not layers:
            raise ValueError('Cls2DetLoss: localization is on, but its Cls2DetStage probes no '
                             'teacher layers (layers=None); give it layers or set '
                             'localization=None.')
        pools = self.localization['pool_sizes']
        if pools is not None and len(pools) != len(layers):
            raise ValueError(f'Cls2DetLoss: localization.pool_sizes {pools} needs one entry per '
                             f'layer of {list(layers)} (None: no pooling).')

    def forward(self, targets: Cls2DetTargets) -> Dict[str, Tensor]:
        """Compute the losses.

        Args:
            targets (Cls2DetTargets): This step's positives and teacher outputs.

        Returns:
            dict[str, Tensor]: ``loss_rec`` and/or ``loss_loc`` (scalars).
        """
        pos = targets.positives
        if len(pos.img_inds) == 0:  # nothing to distil (no ground truth, or none kept)
            zero = pos.logits.sum() * 0.0 + pos.pred_boxes.sum() * 0.0
            return {k: zero for k, on in (('loss_rec', self.recognition),
                                          ('loss_loc', self.localization)) if on is not None}
        losses = {}
        rec = self.recognition
        if rec is not None:
            if targets.teacher_logits is None:
                self.check_targets(False, targets.layers)
            per_sample = recognition_kd(pos.logits, targets.teacher_logits, pos.activation,
                                        rec['tau'], rec['teacher_target'],
                                        rec['class_reduction'])
            losses['loss_rec'] = reduce_positives(
                per_sample, pos.img_inds, targets.num_images,
                rec['normalize']) * rec['loss_weight'] * rec['tau']**2
        loc = self.localization
        if loc is not None:
            self.check_targets(True, targets.layers)
            pools = loc['pool_sizes'] or [None] * len(targets.layers)
            per_sample = localization_l1(targets.pred_feats, targets.gt_feats, pools,
                                         loc['combine'],
                                         [n == INPUT_LAYER for n in targets.layers])
            mean = per_sample.mean() if len(per_sample) else pos.pred_boxes.sum() * 0.0
            losses['loss_loc'] = mean * loc['loss_weight']
        return losses

"""The model work of classifier-to-detector distillation: positives, box crops, teacher."""
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmstructkd.models.losses.cls2det_loss import Cls2DetTargets
from mmstructkd.models.ops.box_crop import (clamp_boxes_to_image, crop_and_resize,
                                            expand_boxes)
from mmstructkd.models.ops.det_positives import DetPositives, detector_positives
from mmstructkd.models.ops.feature_probe import probe_layers
from mmstructkd.registry import MODELS
from .base_stage import DistillStage, StepInputs

#: ``probe(images, layers, grad, stop_early) -> {layer: output, ['__output__': logits]}``:
#: runs the teacher on images of its own (``TeacherProvider.probe``).
Probe = Callable[..., Dict[str, Tensor]]


def module_probe(model: nn.Module) -> Probe:
    """A :data:`Probe` that runs ``model`` eagerly (tests, direct use without a distiller)."""

    def probe(inputs: Tensor, layers: Sequence[str], grad: bool = False,
              stop_early: bool = True) -> Dict[str, Tensor]:
        with torch.set_grad_enabled(grad):
            return probe_layers(model, inputs, layers, lambda m, x: m(x, mode='tensor'),
                                stop_early=stop_early)

    return probe


@MODELS.register_module()
class Cls2DetStage(DistillStage):
    """Outputs ``targets`` (:class:`~mmstructkd.models.losses.Cls2DetTargets`) for
    ``Cls2DetLoss`` (Guo, Alvarez, Salzmann, NeurIPS 2021).

    In every training step: the detector's positives as its own assigner chose them
    (:func:`~mmstructkd.models.ops.detector_positives`, from the recorded call of its head's
    loss, mapped as ``head_inputs``); each ground-truth box that has a positive (grown by
    ``context``, clamped to the image) cropped from the batch in the teacher's normalisation,
    resized to ``crop_size`` and classified by the teacher (no gradient); for localization,
    each positive's predicted box cropped alike and run through the teacher's first
    ``layers`` with the gradient kept (the frozen teacher passes it to the box).

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
        recognition (bool): Classify the ground-truth crops (for recognition KD). Defaults to
            True.
        layers (Sequence[str], optional): Teacher layers compared by localization KD
            (``'input'`` is the crop itself; module paths otherwise, the teacher's forward
            stops after the last one). Defaults to ``('input', 'backbone.maxpool')``, the
            released SSD recipe for an mmpretrain ResNet (the crop pixels and the stem's output
            after its max pooling). None: no localization.
        max_samples (int, optional): At most this many positives per step for localization (a
            random subset, whose mean is an unbiased estimate of the mean over all). None: all,
            as the released code. Defaults to None.

    The teacher runs in the distiller's ``teacher_runtime`` (e.g. ``channels_last=True``: in a
    one-off profile on a 2-core CPU the MobileNetV2 crop classifier took 0.76 s instead of
    1.33 s for 100 ground-truth crops).
    """

    OUTPUTS = ('targets', )

    def __init__(self, crop_size: int = 112, context: float = 0.0, min_size: float = 0.0,
                 clamp_boxes: bool = True, class_map: Optional[Sequence[int]] = None,
                 recognition: bool = True,
                 layers: Optional[Sequence[str]] = ('input', 'backbone.maxpool'),
                 max_samples: Optional[int] = None) -> None:
        super().__init__()
        if not recognition and not layers:
            raise ValueError('Cls2DetStage: recognition=False and no layers: it would compute '
                             'nothing; switch on at least one.')
        self.crop_size = int(crop_size)
        self.context = float(context)
        self.min_size = float(min_size)
        self.clamp_boxes = bool(clamp_boxes)
        self.class_map = None if class_map is None else [int(c) for c in class_map]
        self.recognition = bool(recognition)
        self.layers = list(layers) if layers else None
        self.max_samples = max_samples

    def forward(self, step: StepInputs, head_inputs: Dict[str, Any]) -> Dict[str, Any]:
        """Args: head_inputs (dict): The recorded arguments of the detector head's loss
        (``MethodInputsRecorder`` on ``bbox_head.loss_by_feat``, or on
        ``roi_head.bbox_head.loss_and_target`` for Faster R-CNN)."""
        positives = detector_positives(step.student, head_inputs)
        targets = self.targets(positives, step.teacher.probe,
                               step.teacher.teacher_inputs(step.inputs), step.data_samples)
        return dict(targets=targets)

    def targets(self, pos: DetPositives, probe: Probe, teacher_inputs: Tensor,
                data_samples: List[Any]) -> Cls2DetTargets:
        """The targets of given positives (what :meth:`forward` does after the assignment).

        Args:
            pos (DetPositives): The positives of the batch (``gt_inds`` index each image's
                ``gt_instances``).
            probe (callable): Runs the teacher (see :data:`Probe`).
            teacher_inputs (Tensor): The batch in the teacher's normalisation, (N, 3, H, W).
            data_samples (list): The batch's samples (``gt_instances``; ``metainfo`` with
                ``scale_factor`` when ``min_size`` is set), N of them.

        Returns:
            Cls2DetTargets: The kept positives and the teacher's outputs for them.
        """
        from mmdet.structures.bbox import get_box_tensor

        gts = [s.gt_instances for s in data_samples]
        device = teacher_inputs.device
        layers = self.layers or []
        nothing = Cls2DetTargets(pos, None, layers, [], [], len(data_samples))
        if not sum(len(g) for g in gts):
            return nothing._replace(positives=self._subset(pos, pos.img_inds[:0]))
        gt_boxes = torch.cat([get_box_tensor(g.bboxes) for g in gts]).to(teacher_inputs.dtype)
        gt_imgs = torch.cat([torch.full((len(g), ), i, dtype=torch.long, device=device)
                             for i, g in enumerate(gts)])
        offsets = torch.tensor([0] + [len(g) for g in gts][:-1], device=device).cumsum(0)
        gt_rows = offsets[pos.img_inds] + pos.gt_inds  # each positive's ground-truth row
        if self.min_size > 0:
            big = self._big_enough(gt_boxes, gt_imgs, data_samples)[gt_rows]
            pos = self._subset(pos, big)
            gt_rows = gt_rows[big]
        if len(pos.img_inds) == 0:  # nothing to distil: the teacher does not run
            return nothing._replace(positives=pos)
        # The teacher sees only the ground truths that have a positive: one crop each
        used, gt_rows = torch.unique(gt_rows, return_inverse=True)
        gt_crops = self._crops(teacher_inputs, gt_boxes[used], gt_imgs[used])
        # Ground-truth crops: one teacher pass (no gradient) for logits and features
        gt_out = probe(gt_crops, layers, grad=False, stop_early=not self.recognition)
        teacher_logits = None
        if self.recognition:
            teacher_logits = self._teacher_logits(gt_out['__output__'],
                                                  pos.num_classes)[gt_rows]
        gt_feats, pred_feats = [], []
        if self.layers:
            keep = torch.arange(len(gt_rows), device=gt_rows.device)
            if self.max_samples is not None and len(keep) > self.max_samples:
                keep = torch.randperm(len(keep), device=keep.device)[:self.max_samples]
            pred_crops = self._crops(teacher_inputs, pos.pred_boxes[keep], pos.img_inds[keep])
            # With the gradient: the frozen teacher passes it through to the crops.
            pred_out = probe(pred_crops, layers, grad=True)
            gt_feats = [gt_out[n][gt_rows[keep]] for n in layers]
            pred_feats = [pred_out[n] for n in layers]
        return Cls2DetTargets(pos, teacher_logits, layers, gt_feats, pred_feats,
                              len(data_samples))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _subset(pos: DetPositives, index: Tensor) -> DetPositives:
        return DetPositives(*(f[index] for f in pos[:5]), pos.activation, pos.num_classes)

    def _crops(self, images: Tensor, boxes: Tensor, img_inds: Tensor) -> Tensor:
        boxes = expand_boxes(boxes, self.context)
        if self.clamp_boxes:  # after the context: the crop is of the grown box, in the image
            boxes = clamp_boxes_to_image(boxes, images.shape[-2:])
        return crop_and_resize(images, boxes, img_inds, self.crop_size)

    def _teacher_logits(self, logits: Any, num_classes: int) -> Tensor:
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise TypeError('Cls2DetStage: the teacher must be a classifier whose '
                            "forward(x, mode='tensor') returns logits of shape (N, K), got "
                            f'{type(logits).__name__}.')
        if self.class_map is None:
            if logits.shape[1] != num_classes:
                raise ValueError(
                    f'Cls2DetStage: the teacher has {logits.shape[1]} classes, the detector '
                    f'{num_classes}; set class_map (classifier id of each detection class).')
            return logits
        if (len(self.class_map) != num_classes or max(self.class_map) >= logits.shape[1]
                or min(self.class_map) < 0):
            raise ValueError(f'Cls2DetStage: class_map must give one classifier id (< '
                             f'{logits.shape[1]}) per detection class ({num_classes}), got '
                             f'{self.class_map}.')
        return logits[:, self.class_map]

    def _big_enough(self, gt_boxes: Tensor, gt_imgs: Tensor, data_samples: List[Any]) -> Tensor:
        """shape (G,): the ground truths whose shorter side in the original image (the box
        over the image's ``scale_factor``; 1 without a resize) is at least ``min_size``."""
        scales = gt_boxes.new_tensor([s.metainfo.get('scale_factor', (1.0, 1.0))[:2]
                                      for s in data_samples])[gt_imgs]  # (G, 2): w, h
        sides = (gt_boxes[:, 2:] - gt_boxes[:, :2]) / scales
        return sides.min(dim=1).values >= self.min_size

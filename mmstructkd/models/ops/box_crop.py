"""Differentiable crop-and-resize of boxes (gradients reach the box coordinates)."""
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor


def expand_boxes(boxes: Tensor, context: float) -> Tensor:
    """Grow boxes by ``context`` times their width/height on every side.

    Args:
        boxes (Tensor): shape (P, 4), ``(x1, y1, x2, y2)`` in pixels.
        context (float): Fraction of the width (height) added left and right (top and
            bottom); 0 keeps the boxes. It must match the context of the crops the classifier
            teacher was trained on (``tools/dataset_converters/coco_to_crops.py --context``).

    Returns:
        Tensor: shape (P, 4), differentiable in ``boxes``.
    """
    if context == 0:
        return boxes
    wh = (boxes[:, 2:] - boxes[:, :2]) * context
    return torch.cat([boxes[:, :2] - wh, boxes[:, 2:] + wh], dim=1)


def clamp_boxes_to_image(boxes: Tensor, image_hw: Tuple[int, int]) -> Tensor:
    """Clamp boxes to the image as the released classifier-to-detector code does.

    One-sided, per coordinate: ``x1 = max(x1, 0)``, ``y1 = max(y1, 0)``, ``x2 = min(x2, W)``,
    ``y2 = min(y2, H)`` (NVlabs/DICOD clamps the left/top side at 0 and the right/bottom side
    at the image size, nothing else: a box wholly right of the image keeps its ``x1``). ``W``
    and ``H`` are those of the tensor that is cropped, i.e. the padded batch. A clamped side
    gets no gradient (``torch.clamp``'s; also, in current torch, a side exactly on the
    border), so a predicted box is not pulled through the image border by the localization
    loss.

    Args:
        boxes (Tensor): shape (P, 4), ``(x1, y1, x2, y2)`` in pixels.
        image_hw (tuple[int, int]): ``(H, W)`` of the image tensor.

    Returns:
        Tensor: shape (P, 4), differentiable in ``boxes`` where no clamp applies.
    """
    height, width = image_hw
    return torch.stack([boxes[:, 0].clamp(min=0), boxes[:, 1].clamp(min=0),
                        boxes[:, 2].clamp(max=width), boxes[:, 3].clamp(max=height)], dim=1)


def crop_and_resize(images: Tensor, boxes: Tensor, img_inds: Tensor,
                    size: Union[int, Sequence[int]]) -> Tensor:
    """Bilinearly sample each box of its image onto a ``size`` grid (aspect not kept).

    Box coordinates are continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``, as in
    mmdet); output pixel ``(r, c)`` of an ``h x w`` crop samples the point
    ``(x1 + (c + 0.5) * (x2 - x1) / w, y1 + (r + 0.5) * (y2 - y1) / h)``, i.e. the crop is
    the box resampled at its own pixel centres (RoIAlign ``aligned=True`` with one sample per
    bin). Points outside the image read 0, the mean colour of a normalised image. Unlike
    RoIAlign, the result is differentiable in the box coordinates (through ``grid_sample``).
    These are the sampling points of the released code's ``affine_grid`` + ``grid_sample``
    crop (``align_corners=False``; theta scales by ``(x2 - x1) / W`` and shifts by
    ``(x1 + x2) / W - 1``), which clamps the box first: :func:`clamp_boxes_to_image`.

    Args:
        images (Tensor): shape (N, C, H, W).
        boxes (Tensor): shape (P, 4), ``(x1, y1, x2, y2)`` in pixels of ``images``.
        img_inds (Tensor): shape (P,), the image of each box (long).
        size (int | Sequence[int]): Output ``h`` (and ``w``), e.g. 112.

    Returns:
        Tensor: shape (P, C, h, w), ordered as ``boxes``.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else tuple(size)
    num, channels = boxes.shape[0], images.shape[1]
    if num == 0:
        return images.new_zeros(0, channels, out_h, out_w)
    grid = _sampling_grid(boxes.to(images.dtype), images.shape[-2:], (out_h, out_w))
    crops = images.new_zeros(num, channels, out_h, out_w)
    for i in torch.unique(img_inds).tolist():
        sel = (img_inds == i).nonzero().squeeze(1)
        # The boxes of one image are stacked into one tall grid: one grid_sample call per
        # image instead of one copy of the image per box.
        tall = grid[sel].reshape(1, len(sel) * out_h, out_w, 2)
        sampled = F.grid_sample(images[i:i + 1], tall, mode='bilinear', padding_mode='zeros',
                                align_corners=False)
        crops = crops.index_copy(0, sel, sampled.view(channels, len(sel), out_h,
                                                      out_w).transpose(0, 1))
    return crops


def _sampling_grid(boxes: Tensor, image_hw: Tuple[int, int], out_hw: Tuple[int, int]) -> Tensor:
    """``grid_sample`` grid of shape (P, h, w, 2) for boxes (P, 4) in an ``image_hw`` image."""
    (height, width), (out_h, out_w) = image_hw, out_hw
    ty = (torch.arange(out_h, device=boxes.device, dtype=boxes.dtype) + 0.5) / out_h
    tx = (torch.arange(out_w, device=boxes.device, dtype=boxes.dtype) + 0.5) / out_w
    xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * tx  # (P, w) pixel coordinates
    ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * ty  # (P, h)
    # align_corners=False: normalised -1 / +1 are the outer edges of the image, so the
    # continuous coordinate x maps to 2 x / W - 1.
    gx = (2 * xs / width - 1)[:, None, :].expand(-1, out_h, -1)
    gy = (2 * ys / height - 1)[:, :, None].expand(-1, -1, out_w)
    return torch.stack([gx, gy], dim=-1)

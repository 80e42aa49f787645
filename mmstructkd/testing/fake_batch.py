"""Random batches with the ground truth each toolbox needs (for tests and timing benchmarks).

GENERATED data: random pixels and labels, never real data. The batches are raw (what a
dataloader yields, before the data preprocessor), so a model's ``train_step`` takes them as is.
"""
from typing import List, Tuple

import numpy as np
import torch


def fake_data(scope: str, batch_size: int = 2, size: Tuple[int, int] = (64, 64),
              channels: int = 3, num_classes: int = 4, seed: int = 0) -> dict:
    """A raw batch for ``scope`` (``'mmseg'``, ``'mmdet'`` or ``'mmpretrain'``).

    Args:
        scope (str): The toolbox whose data samples to build.
        batch_size (int): Images in the batch.
        size (tuple[int, int]): Image height and width.
        channels (int): Image channels (1 for the Fashion-MNIST configs).
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        seed (int): Seed of the pixels and labels.

    Returns:
        dict: ``inputs`` (list of uint8-range float tensors, each shape (C, H, W)) and
        ``data_samples`` (seg: ``gt_sem_seg`` and ``gt_depth_map``; det: two boxes with labels
        and masks per image; cls: ``gt_label``).
    """
    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs = [torch.rand(channels, h, w, generator=g) * 255 for _ in range(batch_size)]
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
    if scope == 'mmseg':
        samples = _seg_samples(batch_size, h, w, num_classes, g, meta)
    elif scope == 'mmdet':
        samples = _det_samples(batch_size, h, w, num_classes, g, meta)
    elif scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        samples = [DataSample().set_gt_label(int(torch.randint(num_classes, (), generator=g)))
                   for _ in range(batch_size)]
    else:
        raise ValueError(f'fake_data: scope must be mmseg, mmdet or mmpretrain, got {scope!r}')
    return dict(inputs=inputs, data_samples=samples)


def fake_batch(cfg, model: torch.nn.Module, size: int = 64, preprocess: bool = True,
               seed: int = 0) -> dict:
    """A batch of two random ``size`` x ``size`` images for ``model``, built from ``cfg``.

    :func:`fake_data` for ``cfg.default_scope`` with the model's image channels (those of its
    data preprocessor's ``mean``: 1 for the Fashion-MNIST configs) and labels in ``{0, 1}`` (valid
    for any config). When ``cfg.model`` has a ``teacher_cache``, every sample carries the key
    ``ReplayableViews`` would give its view.

    Args:
        cfg (Config): The config ``model`` was built from.
        model (nn.Module): The model (its ``data_preprocessor``).
        size (int): Image side.
        preprocess (bool): Return the batch through the model's data preprocessor (what its
            ``forward`` takes) rather than raw (what a dataloader yields, what ``train_step``
            takes).
        seed (int): Seed of the pixels and labels.
    """
    mean = getattr(model.data_preprocessor, 'mean', None)
    channels = mean.shape[0] if mean is not None else 3
    batch = fake_data(cfg.default_scope, batch_size=2, size=(size, size), channels=channels,
                      num_classes=2, seed=seed)
    if cfg.model.get('teacher_cache'):
        from mmstructkd.datasets import KEY_FIELD
        for i, sample in enumerate(batch['data_samples']):
            sample.set_metainfo({KEY_FIELD: ('test', i, 0)})
    return model.data_preprocessor(batch, True) if preprocess else batch


def _seg_samples(n: int, h: int, w: int, num_classes: int, g: torch.Generator,
                 meta: dict) -> List:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    return [SegDataSample(
        gt_sem_seg=PixelData(data=torch.randint(0, num_classes, (1, h, w), generator=g)),
        gt_depth_map=PixelData(data=torch.rand(1, h, w, generator=g) * 10),
        metainfo=dict(meta)) for _ in range(n)]


def _det_samples(n: int, h: int, w: int, num_classes: int, g: torch.Generator,
                 meta: dict) -> List:
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    samples = []
    for _ in range(n):
        sample = DetDataSample(metainfo=dict(meta, batch_input_shape=(h, w),
                                             scale_factor=(1., 1.)))
        # Two boxes, a quarter and a half of the image, at random places inside it.
        boxes = []
        masks = np.zeros((2, h, w), dtype=np.uint8)
        for k, frac in enumerate((0.25, 0.5)):
            bh, bw = int(h * frac), int(w * frac)
            y = int(torch.randint(0, h - bh + 1, (), generator=g))
            x = int(torch.randint(0, w - bw + 1, (), generator=g))
            boxes.append([x, y, x + bw, y + bh])
            masks[k, y:y + bh, x:x + bw] = 1
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.randint(0, num_classes, (2, ), generator=g),
            masks=BitmapMasks(masks, h, w))
        samples.append(sample)
    return samples

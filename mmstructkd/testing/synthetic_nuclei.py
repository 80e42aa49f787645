"""GENERATED data laid out as a user's own dataset (the example of ``docs/own_data.md``).

Nothing here is real data: grey-scale tiles (128x128 by default) of bright elliptical blobs
("nuclei") on a dark textured background, one class plus background, written in the two
layouts the tutorial describes, under one root:

- segmentation (mmseg layout): ``img_dir/{split}/*.png`` and ``ann_dir/{split}/*.png``, label
  maps with 0 = background, 1 = nucleus;
- detection (COCO): ``images/*.png`` and ``annotations/instances_{split}.json`` with one
  category, ``nucleus``.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

#: The class list of the generated dataset, as a config's ``metainfo`` gives it.
SEG_CLASSES = ('background', 'nucleus')
DET_CLASSES = ('nucleus', )


def make_tile(rng: np.random.Generator, size: int, max_nuclei: int = 6
              ) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, int, int, int]]]:
    """One tile: grey image (H, W) uint8, label map (H, W) uint8, boxes (x1, y1, x2, y2)."""
    noise = rng.normal(0, 12, size=(size // 8, size // 8))
    img = np.clip(40 + cv2.resize(noise, (size, size)), 0, 255)
    mask = np.zeros((size, size), np.uint8)
    boxes = []
    for _ in range(int(rng.integers(2, max_nuclei + 1))):
        axes = tuple(int(a) for a in rng.integers(size // 20, size // 9, size=2))
        margin = max(axes) + 1
        center = tuple(int(c) for c in rng.integers(margin, size - margin, size=2))
        angle = float(rng.uniform(0, 180))
        blob = np.zeros_like(mask)
        cv2.ellipse(blob, center, axes, angle, 0, 360, 1, -1)
        img[blob > 0] = rng.uniform(150, 230)
        mask[blob > 0] = 1
        ys, xs = np.nonzero(blob)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())))
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return img, mask, boxes


def make_nuclei_dataset(root: str, splits: Dict[str, int], size: int = 128,
                        seed: int = 0) -> str:
    """Write the segmentation and detection layouts of ``docs/own_data.md``; return ``root``.

    Args:
        root (str): The dataset folder (``data/nuclei`` in the tutorial).
        splits (dict): Split name -> number of tiles, e.g. ``dict(train=8, val=4)``.
        size (int): Side of the square tiles. Defaults to 128.
        seed (int): Random seed.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, n in splits.items():
        for folder in ('img_dir', 'ann_dir'):
            os.makedirs(osp.join(root, folder, split), exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            img, mask, boxes = make_tile(rng, size)
            name = f'{split}_{i:04d}.png'
            cv2.imwrite(osp.join(root, 'img_dir', split, name), img)
            cv2.imwrite(osp.join(root, 'ann_dir', split, name), mask)
            cv2.imwrite(osp.join(root, 'images', name), img)
            images.append(dict(id=i, file_name=name, height=size, width=size))
            for x1, y1, x2, y2 in boxes:
                w, h = x2 - x1 + 1, y2 - y1 + 1
                annotations.append(dict(id=len(annotations) + 1, image_id=i, category_id=1,
                                        bbox=[x1, y1, w, h], area=w * h, iscrowd=0))
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=[dict(id=1, name=DET_CLASSES[0])]), f)
    return root

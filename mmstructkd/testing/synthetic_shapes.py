"""GENERATED data: images of randomly coloured shapes, for tests and the demo.

Nothing here is real data. Each image has a textured background and a few shapes (circle,
square, triangle) whose colour is random, so the class of a shape is told by its form, not
its colour (a task that needs spatial context: deeper models do better). The same scenes are
written in the layouts the toolboxes read:

- segmentation: mmseg layout (``img_dir/{split}/*.png``, ``ann_dir/{split}/*.png``, labels
  0 = background, 1..3 = shapes, 255 = ignored border pixels);
- detection: COCO json (``annotations/{split}.json``, ``images/{split}/*.png``);
- classification: one shape per image, an mmpretrain annotation file
  (``{split}.txt`` with ``<file> <label>`` lines, images under ``{split}/``).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

SHAPES = ('circle', 'square', 'triangle')
SEG_CLASSES = ('background', ) + SHAPES
SEG_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 0], [0, 0, 230]]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(0, 256, size=3)
    noise = rng.normal(0, 25, size=(size // 4, size // 4, 3))
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _draw_shape(img: np.ndarray, mask: np.ndarray, shape: int, center: Tuple[int, int],
                radius: int, color: Tuple[int, ...], label: int) -> Tuple[int, int, int, int]:
    """Draw shape ``shape`` into ``img`` and its ``label`` into ``mask``; return its box."""
    cx, cy = center
    if SHAPES[shape] == 'circle':
        cv2.circle(img, (cx, cy), radius, color, -1)
        cv2.circle(mask, (cx, cy), radius, label, -1)
    elif SHAPES[shape] == 'square':
        cv2.rectangle(img, (cx - radius, cy - radius), (cx + radius, cy + radius), color, -1)
        cv2.rectangle(mask, (cx - radius, cy - radius), (cx + radius, cy + radius), label, -1)
    else:
        pts = np.array([[cx, cy - radius], [cx - radius, cy + radius],
                        [cx + radius, cy + radius]], np.int32)
        cv2.fillPoly(img, [pts], color)
        cv2.fillPoly(mask, [pts], label)
    h, w = mask.shape
    return (max(cx - radius, 0), max(cy - radius, 0), min(cx + radius, w - 1),
            min(cy + radius, h - 1))


def make_scene(rng: np.random.Generator, size: int, max_shapes: int = 3
               ) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, Tuple[int, ...]]]]:
    """One scene: image (H, W, 3) uint8 BGR, label map (H, W) uint8, [(shape, box), ...]."""
    img = _background(rng, size)
    mask = np.zeros((size, size), np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        shape = int(rng.integers(len(SHAPES)))
        radius = int(rng.integers(size // 10, size // 4))
        center = tuple(int(c) for c in rng.integers(radius, size - radius, size=2))
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = _draw_shape(img, mask, shape, center, radius, color, shape + 1)
        objects.append((shape, box))
    # Anti-aliasing-like noise on the whole image so that colours are not exact cues.
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    return img, mask, objects


def make_seg_dataset(root: str, splits: Dict[str, int], size: int = 64, seed: int = 0) -> str:
    """Write a segmentation dataset in mmseg layout; return ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in splits.items():
        os.makedirs(osp.join(root, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(root, 'ann_dir', split), exist_ok=True)
        for i in range(n):
            img, mask, _ = make_scene(rng, size)
            mask[:1, :] = 255  # a thin ignored border exercises ignore_index
            cv2.imwrite(osp.join(root, 'img_dir', split, f'{i:05d}.png'), img)
            cv2.imwrite(osp.join(root, 'ann_dir', split, f'{i:05d}.png'), mask)
    return root


def make_det_dataset(root: str, splits: Dict[str, int], size: int = 64, seed: int = 0) -> str:
    """Write a detection dataset with COCO annotations; return ``root``."""
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SHAPES)]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, n in splits.items():
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            img, _, objects = make_scene(rng, size)
            name = f'{i:05d}.png'
            cv2.imwrite(osp.join(root, 'images', split, name), img)
            images.append(dict(id=i, file_name=name, height=size, width=size))
            for shape, (x1, y1, x2, y2) in objects:
                w, h = x2 - x1 + 1, y2 - y1 + 1
                annotations.append(dict(id=len(annotations) + 1, image_id=i,
                                        category_id=shape + 1, bbox=[x1, y1, w, h],
                                        area=w * h, iscrowd=0))
        with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def make_cls_dataset(root: str, splits: Dict[str, int], size: int = 32, seed: int = 0) -> str:
    """Write a classification dataset (one shape per image); return ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in splits.items():
        os.makedirs(osp.join(root, split), exist_ok=True)
        lines = []
        for i in range(n):
            img, _, objects = make_scene(rng, size, max_shapes=1)
            name = f'{i:05d}.png'
            cv2.imwrite(osp.join(root, split, name), img)
            lines.append(f'{name} {objects[0][0]}')
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root

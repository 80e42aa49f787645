"""Object crops of a COCO-format detection set: the training data of a classifier teacher.

Writes, for each split, every (non-crowd, large enough) box grown by ``--context`` of its size
on every side as an image file, in an mmpretrain ``CustomDataset`` layout::

    OUT/<split>/<class name>/<image stem>_<annotation id>.png
    OUT/meta/<split>.txt        "<class name>/<file> <label>" per line
    OUT/meta/classes.txt        class names, one per line, in label order

Labels are mmdet's: the categories in the order of the annotation file (the order
``CocoDataset`` numbers them in), so the classifier's class ids equal the detector's and
classifier-to-detector distillation needs no ``class_map``. Parts of a grown box outside the
image are filled with ``--fill`` (default: the ImageNet mean, which is 0 after normalisation,
as the distillation's crop reads outside the image). Crops keep their size; the teacher's
pipeline resizes them (without keeping the aspect ratio, as the distillation's crop does).

Every file is written to a temporary name and renamed, so an interrupted run leaves no
half-written file; a rerun overwrites.

    python tools/dataset_converters/coco_to_crops.py DATA_ROOT OUT \\
        [--splits train:annotations/instances_train.json:images/ ...] [--context 0.1]
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

#: ImageNet mean, RGB (OpenMMLab's data preprocessors use it): 0 after normalisation.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def parse_split(text: str) -> Tuple[str, str, str]:
    """``name:annotation file:image folder`` (paths relative to the data root)."""
    parts = text.split(':')
    if len(parts) != 3 or not all(parts[:2]):
        raise argparse.ArgumentTypeError(
            f'--splits entry "{text}" must be NAME:ANN_FILE:IMG_DIR, e.g. '
            'train:annotations/instances_train.json:images/')
    return parts[0], parts[1], parts[2]


def grow_box(x: float, y: float, w: float, h: float, context: float) -> Tuple[int, ...]:
    """COCO ``[x, y, w, h]`` grown by ``context`` per side -> integer ``(x1, y1, x2, y2)``
    (rounded outwards; pixel ``i`` covers ``[i, i + 1)``)."""
    x1, y1 = x - context * w, y - context * h
    x2, y2 = x + w + context * w, y + h + context * h
    return int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))


def crop_with_fill(image: np.ndarray, box: Sequence[int], fill_bgr: Sequence[float]) -> np.ndarray:
    """``image[y1:y2, x1:x2]``; the part outside the image is ``fill_bgr``."""
    x1, y1, x2, y2 = box
    height, width = image.shape[:2]
    out = np.empty((y2 - y1, x2 - x1, image.shape[2]), dtype=image.dtype)
    out[...] = np.asarray(fill_bgr, dtype=np.float64).round().astype(image.dtype)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out


def write_atomic(path: str, data: bytes) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.part{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def load_coco(ann_path: str) -> dict:
    if not osp.isfile(ann_path):
        raise FileNotFoundError(f'annotation file {ann_path} does not exist; give --splits '
                                'NAME:ANN_FILE:IMG_DIR relative to the data root.')
    with open(ann_path) as f:
        coco = json.load(f)
    missing = [k for k in ('images', 'annotations', 'categories') if k not in coco]
    if missing:
        raise ValueError(f'{ann_path} is no COCO detection file: it lacks {missing}.')
    return coco


def convert_split(data_root: str, out: str, name: str, ann_file: str, img_dir: str,
                  context: float, min_size: float, fill_rgb: Sequence[float],
                  ext: str = '.png') -> Dict[str, int]:
    """Write the crops and the annotation list of one split; return crops per class."""
    coco = load_coco(osp.join(data_root, ann_file))
    classes = [c['name'] for c in coco['categories']]
    label_of = {c['id']: i for i, c in enumerate(coco['categories'])}
    images = {im['id']: im for im in coco['images']}
    by_image: Dict[int, List[dict]] = {}
    for ann in coco['annotations']:
        if ann.get('iscrowd', 0) or min(ann['bbox'][2:]) < min_size:
            continue
        if ann['category_id'] not in label_of:
            raise ValueError(f'{ann_file}: annotation {ann["id"]} has category '
                             f'{ann["category_id"]}, which "categories" does not define.')
        by_image.setdefault(ann['image_id'], []).append(ann)
    fill_bgr = tuple(fill_rgb)[::-1]
    lines, counts = [], {c: 0 for c in classes}
    for image_id in sorted(by_image):
        info = images.get(image_id)
        if info is None:
            raise ValueError(f'{ann_file}: annotations refer to image id {image_id}, which '
                             '"images" does not list.')
        path = osp.join(data_root, img_dir, info['file_name'])
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f'image {path} of {ann_file} is missing or unreadable; '
                                    'check the IMG_DIR part of --splits.')
        stem = osp.splitext(osp.basename(info['file_name']))[0]
        for ann in by_image[image_id]:
            cls = classes[label_of[ann['category_id']]]
            crop = crop_with_fill(image, grow_box(*ann['bbox'], context), fill_bgr)
            ok, encoded = cv2.imencode(ext, crop)
            if not ok:
                raise RuntimeError(f'could not encode the crop of annotation {ann["id"]}')
            relative = f'{cls}/{stem}_{ann["id"]}{ext}'
            write_atomic(osp.join(out, name, relative), encoded.tobytes())
            lines.append(f'{relative} {label_of[ann["category_id"]]}')
            counts[cls] += 1
    write_atomic(osp.join(out, 'meta', f'{name}.txt'), ('\n'.join(lines) + '\n').encode())
    write_atomic(osp.join(out, 'meta', 'classes.txt'), ('\n'.join(classes) + '\n').encode())
    return counts


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='folder of the COCO-format detection set')
    parser.add_argument('out', help='output folder (created)')
    parser.add_argument('--splits', nargs='+', type=parse_split,
                        default=[parse_split('train:annotations/instances_train.json:images/'),
                                 parse_split('val:annotations/instances_val.json:images/')],
                        help='NAME:ANN_FILE:IMG_DIR, paths relative to data_root (default: '
                        'train and val of the layout annotations/instances_<split>.json, '
                        'images/)')
    parser.add_argument('--context', type=float, default=0.0,
                        help='grow each box by this fraction of its width/height on every side '
                        '(use the same value as Cls2DetLoss.context)')
    parser.add_argument('--min-size', type=float, default=1.0,
                        help='skip boxes narrower or lower than this (pixels)')
    parser.add_argument('--fill', type=float, nargs=3, default=IMAGENET_MEAN_RGB,
                        metavar=('R', 'G', 'B'), help='colour outside the image')
    args = parser.parse_args(argv)
    if args.context < 0:
        parser.error(f'--context must be >= 0, got {args.context}')
    if not osp.isdir(args.data_root):
        parser.error(f'data root {args.data_root} does not exist')
    for name, ann_file, img_dir in args.splits:
        counts = convert_split(args.data_root, args.out, name, ann_file, img_dir, args.context,
                               args.min_size, args.fill)
        print(f'{name}: {sum(counts.values())} crops ' +
              ', '.join(f'{c} {n}' for c, n in counts.items()) +
              f' -> {osp.join(args.out, name)}')


if __name__ == '__main__':
    sys.exit(main())

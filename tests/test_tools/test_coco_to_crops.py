"""tools/dataset_converters/coco_to_crops.py on a tiny COCO-format fixture built here."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT


def load_tool():
    path = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'coco_to_crops.py')
    spec = importlib.util.spec_from_file_location('coco_to_crops', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def coco_root(tmp_path):
    """Two 16x20 images; image 1 holds pixel value (B, G, R) = (x, y, 7) at (y, x).
    Categories are listed as id 5 "dog" before id 2 "cat": labels follow that order."""
    root = tmp_path / 'coco'
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    y, x = np.mgrid[0:16, 0:20]
    image = np.stack([x, y, np.full_like(x, 7)], axis=-1).astype(np.uint8)
    cv2.imwrite(str(root / 'images' / 'a.png'), image)
    cv2.imwrite(str(root / 'images' / 'b.png'), image[::-1].copy())
    coco = dict(
        images=[dict(id=1, file_name='a.png', width=20, height=16),
                dict(id=2, file_name='b.png', width=20, height=16)],
        categories=[dict(id=5, name='dog'), dict(id=2, name='cat')],
        annotations=[
            dict(id=10, image_id=1, category_id=2, bbox=[2, 3, 4, 5], iscrowd=0),
            dict(id=11, image_id=1, category_id=5, bbox=[0, 0, 2, 4], iscrowd=0),
            dict(id=12, image_id=1, category_id=5, bbox=[5, 5, 6, 6], iscrowd=1),  # crowd
            dict(id=13, image_id=2, category_id=2, bbox=[1, 1, 0.5, 3], iscrowd=0),  # tiny
        ])
    (root / 'annotations' / 'instances_train.json').write_text(json.dumps(coco))
    return root


def test_crops_labels_and_layout(coco_root, tmp_path):
    tool = load_tool()
    out = tmp_path / 'crops'
    tool.main([str(coco_root), str(out), '--splits',
               'train:annotations/instances_train.json:images/', '--context', '0.5',
               '--fill', '1', '2', '3'])
    # mmdet's labels: the file's category order (dog 0, cat 1); crowd and tiny boxes skipped
    assert (out / 'meta' / 'classes.txt').read_text() == 'dog\ncat\n'
    assert (out / 'meta' / 'train.txt').read_text() == 'cat/a_10.png 1\ndog/a_11.png 0\n'
    # box [2, 3, 4, 5] grown by half its size per side: x 0..8, y 0.5..10.5 -> rows 0..11
    cat = cv2.imread(str(out / 'train' / 'cat' / 'a_10.png'))
    assert cat.shape == (11, 8, 3)
    assert (cat[..., 0] == np.arange(8)[None]).all()  # blue = x
    assert (cat[..., 1] == np.arange(11)[:, None]).all()  # green = y
    # box [0, 0, 2, 4] grown by (1, 2) px per side: the part left of / above the image is the
    # fill colour (R, G, B) = (1, 2, 3), i.e. BGR (3, 2, 1)
    dog = cv2.imread(str(out / 'train' / 'dog' / 'a_11.png'))
    assert dog.shape == (8, 4, 3)
    assert (dog[:2] == [3, 2, 1]).all() and (dog[:, :1] == [3, 2, 1]).all()
    assert (dog[2:, 1:, 0] == np.arange(3)[None]).all()  # x = 0..2 inside the image
    leftovers = [f for _, _, files in os.walk(out) for f in files if '.part' in f]
    assert not leftovers


def test_missing_files_raise_errors_that_name_them(coco_root, tmp_path):
    tool = load_tool()
    with pytest.raises(FileNotFoundError, match='instances_nope.json does not exist'):
        tool.main([str(coco_root), str(tmp_path / 'o'), '--splits',
                   'train:annotations/instances_nope.json:images/'])
    os.remove(coco_root / 'images' / 'a.png')
    with pytest.raises(FileNotFoundError, match='a.png of annotations/instances_train.json'):
        tool.main([str(coco_root), str(tmp_path / 'o'), '--splits',
                   'train:annotations/instances_train.json:images/'])
    with pytest.raises(SystemExit):  # argparse: NAME:ANN_FILE:IMG_DIR
        tool.main([str(coco_root), str(tmp_path / 'o'), '--splits', 'train'])

"""Top-level variables of a child config reach the places its bases derived from them."""
import os.path as osp
import textwrap

import pytest
from mmengine.config import Config

from mmstructkd.utils.config_loading import load_config
from mmstructkd.utils.config_resolution import plain, resolve_config
from tests.conftest import REPO_ROOT

BASE = '''
data_root = 'data/old/'
metainfo = dict(classes=('a', 'b', 'c'))
num_classes = len(metainfo['classes'])
teacher_ckpt = 'old_teacher.pth'
max_epochs = 24
warmup_iters = 100
_dataset = dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                ann_file='annotations/train.json')
train_dataloader = dict(batch_size=2, dataset=dict(type='RepeatDataset', times=2,
                                                   dataset=_dataset))
val_dataloader = dict(batch_size=1, dataset=_dataset)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
model = dict(type='Distiller', num_classes=num_classes, teacher_ckpt=teacher_ckpt,
             student=dict(type='RetinaNet', bbox_head=dict(num_classes=num_classes),
                          aux=dict(num_classes=7)),
             teacher=dict(cfg_path='teacher.py'),
             discriminator=dict(num_classes=num_classes))
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[16, 22]),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
'''


def write(folder, name: str, text: str) -> str:
    path = osp.join(str(folder), name)
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def base(tmp_path):
    return write(tmp_path, 'base.py', BASE)


def child(tmp_path, body: str) -> str:
    return write(tmp_path, 'child.py', "_base_ = ['./base.py']\n" + textwrap.dedent(body))


def test_a_config_that_changes_nothing_is_left_as_it_is(base):
    cfg = Config.fromfile(base)
    before = plain(cfg.to_dict())
    assert plain(resolve_config(cfg).to_dict()) == before


def test_child_variables_reach_every_derived_place(base, tmp_path):
    cfg = load_config(child(tmp_path, '''
        data_root = 'data/nuclei'
        metainfo = dict(classes=('nucleus', ))
        num_classes = 1
        teacher_ckpt = 'work_dirs/teacher/epoch_12.pth'
        max_epochs = 12
        warmup_iters = 10
        '''))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        dataset = dataset.get('dataset', dataset)  # through the RepeatDataset wrapper
        assert dataset.data_root == 'data/nuclei'
        assert plain(dataset.metainfo) == dict(classes=['nucleus'])
        assert dataset.ann_file == 'annotations/train.json'  # relative: not a root
    # The evaluator's path was built from the old root (and the new one has no '/').
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == \
        'data/nuclei/annotations/val.json'
    model = cfg.model
    assert model.num_classes == model.student.bbox_head.num_classes == 1
    assert model.discriminator.num_classes == 1
    assert model.student.aux.num_classes == 7  # not derived from num_classes: left alone
    assert model.teacher_ckpt == 'work_dirs/teacher/epoch_12.pth'
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == 12
    warmup, steps = cfg.param_scheduler
    assert warmup.end == 10
    assert steps.milestones == [8, 11]  # 16 and 22 of 24 epochs, scaled


def test_places_the_child_set_itself_are_kept(base, tmp_path):
    cfg = load_config(child(tmp_path, '''
        data_root = 'data/new/'
        max_epochs = 12
        val_dataloader = dict(dataset=dict(data_root='elsewhere/'))
        param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, milestones=[6])]
        '''))
    assert cfg.train_dataloader.dataset.dataset.data_root == 'data/new/'
    assert cfg.val_dataloader.dataset.data_root == 'elsewhere/'
    # A schedule written by the child is written for its length: not scaled.
    assert cfg.param_scheduler[0].milestones == [6]


def test_cfg_options_on_places_are_kept_and_on_variables_propagate(base, tmp_path):
    path = child(tmp_path, "data_root = 'data/new/'\n")
    cfg = load_config(path, {'val_dataloader.dataset.data_root': 'cli/',
                             'teacher_ckpt': 'cli_teacher.pth'})
    assert cfg.val_dataloader.dataset.data_root == 'cli/'
    assert cfg.train_dataloader.dataset.dataset.data_root == 'data/new/'
    assert cfg.model.teacher_ckpt == 'cli_teacher.pth'
    # model.teacher_ckpt given directly: the top-level one follows, the dump names one file
    cfg = load_config(path, {'model.teacher_ckpt': 'direct.pth'})
    assert cfg.model.teacher_ckpt == cfg.teacher_ckpt == 'direct.pth'
    # resolving twice changes nothing more (SafeRunner.from_cfg resolves a loaded config)
    before = plain(cfg.to_dict())
    assert plain(resolve_config(cfg).to_dict()) == before


def test_metainfo_alone_sets_the_class_count(base, tmp_path):
    cfg = load_config(child(tmp_path, "metainfo = dict(classes=('x', 'y'))\n"))
    assert cfg.num_classes == cfg.model.num_classes == 2
    assert cfg.model.student.bbox_head.num_classes == 2


def test_a_class_count_that_disagrees_with_metainfo_is_an_error(base, tmp_path):
    with pytest.raises(ValueError, match=r'num_classes = 2 but metainfo lists 3 classes \(a, b'):
        load_config(child(tmp_path, 'num_classes = 2\n'))


def test_class_weights_of_the_old_classes_are_an_error(tmp_path):
    write(tmp_path, 'base.py', '''
        metainfo = dict(classes=('a', 'b', 'c'))
        num_classes = 3
        model = dict(decode_head=dict(num_classes=3, loss_decode=dict(class_weight=[1, 2, 3])))
        ''')
    with pytest.raises(ValueError, match='model.decode_head.loss_decode.class_weight has 3'):
        load_config(child(tmp_path, "metainfo = dict(classes=('x', 'y'))\n"))


def test_max_iters_sets_loop_and_scheduler_end(tmp_path):
    write(tmp_path, 'base.py', '''
        max_iters = 2000
        param_scheduler = [dict(type='PolyLR', by_epoch=False, begin=0, end=max_iters),
                           dict(type='PolyLR', by_epoch=False, begin=0)]
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
        ''')
    cfg = load_config(child(tmp_path, 'max_iters = 300\n'))
    assert cfg.train_cfg.max_iters == 300 and cfg.train_cfg.val_interval == 500
    assert cfg.param_scheduler[0].end == 300 and 'end' not in cfg.param_scheduler[1]


@pytest.mark.parametrize('name', [
    'structkd/structkd_pixel-pair-holistic_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py',
    'structkd/aspp_mobilenetv2-d8_balanced-ce_8xb8-4k_camvid-240x180.py',
    'cwd/cwd-pair_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py',
    'reviewkd/reviewkd_retinanet-mnv2-fpn128-gn_retinanet-mnv2-w0.5-fpn64-slim_1xb8-24e_'
    'bccd-320x240_connector-lr1.py',
    'cls2det/cls2det_mnv2-crops_retinanet-mnv2-w0.5-fpn64-slim_1xb8-24e_bccd-320x240.py',
    'cwd/cwd_logits_deeplabv3-r101-d8_deeplabv3-r18-d8_4xb2-80k_cityscapes-512x1024.py',
])
def test_shipped_configs_resolve_to_themselves(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    before = plain(cfg.to_dict())
    assert plain(resolve_config(cfg).to_dict()) == before


def test_shipped_camvid_config_on_a_two_class_dataset(tmp_path):
    shipped = osp.join(REPO_ROOT, 'configs', 'structkd',
                       'structkd_pixel-pair-holistic_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_'
                       'camvid-240x180.py')
    cfg = load_config(write(tmp_path, 'mine.py', f'''
        _base_ = [{shipped!r}]
        data_root = 'data/nuclei'
        metainfo = dict(classes=('background', 'nucleus'), palette=[[0, 0, 0], [255, 0, 0]])
        num_classes = 2
        teacher_ckpt = 'work_dirs/teacher/iter_300.pth'
        max_iters = 300
        '''))
    assert cfg.model.num_classes == cfg.model.student.decode_head.num_classes == 2
    assert cfg.model.teacher_ckpt == 'work_dirs/teacher/iter_300.pth'
    assert cfg.test_dataloader.dataset.data_root == 'data/nuclei'
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 300
    # every scheduler ends with the run (the Runner's default end)
    assert all('end' not in s for group in cfg.param_scheduler.values() for s in group)


def test_a_wrong_base_names_the_config_and_close_matches(tmp_path):
    (tmp_path / 'schedules').mkdir()
    write(tmp_path / 'schedules', 'sgd_24e.py', 'lr = 0.1\n')
    write(tmp_path, 'middle.py', "_base_ = ['./schedules/sgd_42e.py']\n")
    path = write(tmp_path, 'top.py', "_base_ = ['./middle.py']\n")
    with pytest.raises(FileNotFoundError) as error:
        load_config(path)
    message = str(error.value)
    assert 'middle.py" inherits _base_ "./schedules/sgd_42e.py"' in message
    assert 'schedules/sgd_24e.py' in message  # the close match


def test_a_missing_config_file_lists_close_matches(tmp_path):
    write(tmp_path, 'structkd_pixel.py', 'x = 1\n')
    with pytest.raises(FileNotFoundError, match='structkd_pixel.py'):
        load_config(str(tmp_path / 'structkd_pixle.py'))

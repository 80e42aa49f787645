"""docs/own_data.md, followed on GENERATED data laid out as a user's dataset.

The configs are written exactly as the tutorial prints them and its commands are run as
printed (from a checkout-like folder: the repository's configs/ and tools/ linked, the user's
configs/nuclei/ and data/nuclei/ beside them), with the run lengths shortened (``max_iters``,
``max_epochs``: the variables the tutorial says follow through) and no data-loader workers.
The data is new to every shipped config: 128x128 grey-scale tiles, one class (+ background
for segmentation), masks and COCO boxes (``mmstructkd.testing.synthetic_nuclei``).
"""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torchvision
from mmengine.config import Config

from mmstructkd.testing.synthetic_nuclei import make_nuclei_dataset
from tests.conftest import REPO_ROOT

DOC = osp.join(REPO_ROOT, 'docs', 'own_data.md')
WORKERS = [f'{loader}.{key}={value}' for loader in ('train_dataloader', 'val_dataloader',
                                                    'test_dataloader')
           for key, value in (('num_workers', 0), ('persistent_workers', False))]
SEG_SHORT = ['max_iters=2', 'train_dataloader.batch_size=2'] + WORKERS
DET_SHORT = ['max_epochs=1', 'train_dataloader.batch_size=2'] + WORKERS


def doc_text() -> str:
    with open(DOC) as f:
        return f.read()


def doc_configs() -> dict:
    """``configs/nuclei/<name>.py`` -> text, from the python blocks of the tutorial."""
    blocks = re.findall(r'```python\n(.*?)```', doc_text(), flags=re.S)
    return {block.splitlines()[0][2:]: block for block in blocks
            if block.startswith('# configs/nuclei/')}


def doc_commands() -> list:
    """Every ``python tools/...`` line of the bash blocks, in the tutorial's order."""
    blocks = re.findall(r'```bash\n(.*?)```', doc_text(), flags=re.S)
    return [line.split('  #')[0].strip() for block in blocks for line in block.splitlines()
            if line.startswith('python tools/')]


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """A folder laid out like the repository root as the tutorial's user has it."""
    root = tmp_path_factory.mktemp('own_data')
    os.makedirs(root / 'configs' / 'nuclei')
    for entry in os.listdir(osp.join(REPO_ROOT, 'configs')):
        os.symlink(osp.join(REPO_ROOT, 'configs', entry), root / 'configs' / entry)
    os.symlink(osp.join(REPO_ROOT, 'tools'), root / 'tools')
    for path, text in doc_configs().items():
        with open(root / path, 'w') as f:
            f.write(text)
    make_nuclei_dataset(str(root / 'data' / 'nuclei'), dict(train=8, val=4, test=2), size=128)
    # torchvision's MobileNetV2 architecture with random weights stands in for ImageNet's
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2().state_dict(), root / 'mobilenet_v2.pth')
    env = dict(os.environ, MMSTRUCTKD_HOME=str(root / 'home'), OMP_NUM_THREADS='1',
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    run(root, env, 'python tools/model_converters/fetch_imagenet_mobilenet_v2.py',
        ['--source', str(root / 'mobilenet_v2.pth')])
    return root, env


def run(root, env, command: str, extra=(), short: bool = False) -> str:
    """Run a command of the tutorial (with ``extra`` arguments; ``short``: on the checkpoint
    of the shortened run) in ``root``; its output."""
    assert command in doc_commands(), f'the tutorial has no command "{command}"'
    if short:
        command = shortened(command)
    return run_argv(root, env, command.split()[1:] + list(extra))


def run_argv(root, env, argv) -> str:
    """``python <argv>`` in ``root``; its output."""
    result = subprocess.run([sys.executable] + list(argv), cwd=str(root), env=env,
                            capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'{argv}\n{output[-6000:]}'
    return output


def shortened(command: str) -> str:
    """A tutorial command with the checkpoint of the shortened run."""
    return command.replace('iter_2000.pth', 'iter_2.pth').replace('epoch_24.pth', 'epoch_1.pth')


def export_tool():
    spec = importlib.util.spec_from_file_location(
        'export_student', osp.join(REPO_ROOT, 'tools', 'export_student.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights(path) -> dict:
    return torch.load(str(path), map_location='cpu', weights_only=True)['state_dict']


def test_the_tutorial_configs_change_paths_classes_and_class_count_only():
    allowed = {'_base_', 'data_root', 'metainfo', 'num_classes', 'teacher_ckpt'}
    configs = doc_configs()
    assert len(configs) == 6
    for path, text in configs.items():
        names = set(re.findall(r'^(\w+) =', text, flags=re.M))
        assert names <= allowed, (path, names - allowed)


def test_segmentation_structkd_on_a_two_class_dataset(checkout):
    root, env = checkout
    teacher_cfg = 'configs/nuclei/aspp_mobilenetv2-d8_nuclei-128x128.py'
    distill_cfg = 'configs/nuclei/structkd_aspp-mnv2-d8_fcn-mnv2-d32_nuclei-128x128.py'
    run(root, env, f'python tools/train.py {teacher_cfg}', ['--cfg-options', *SEG_SHORT])
    teacher = root / 'work_dirs' / 'aspp_mobilenetv2-d8_nuclei-128x128' / 'iter_2.pth'
    assert weights(teacher)['decode_head.conv_seg.weight'].shape[0] == 2

    teacher_ckpt = shortened(Config.fromfile(str(root / distill_cfg)).teacher_ckpt)
    log = run(root, env, f'python tools/train.py {distill_cfg}',
              ['--cfg-options', *SEG_SHORT, f'teacher_ckpt={teacher_ckpt}'])
    assert f'Loaded teacher checkpoint from {teacher_ckpt}' in log
    work = root / 'work_dirs' / 'structkd_aspp-mnv2-d8_fcn-mnv2-d32_nuclei-128x128'
    state = weights(work / 'iter_2.pth')
    assert state['student.decode_head.conv_seg.weight'].shape[0] == 2
    assert state['teacher.decode_head.conv_seg.weight'].shape[0] == 2
    assert state['discriminator.body.0.weight'].shape[1] == 2  # the critic reads 2 channels
    # the config the run dumped names one teacher checkpoint, the one it used
    dumped = Config.fromfile(str(work / osp.basename(distill_cfg)))
    assert dumped.teacher_ckpt == dumped.model.teacher_ckpt == teacher_ckpt
    assert dumped.train_cfg.max_iters == 2

    export, test = [c for c in doc_commands() if 'nuclei_fcn_student' in c]
    run(root, env, export, short=True)
    exported = weights(root / 'work_dirs' / 'nuclei_fcn_student.pth')
    assert exported['decode_head.conv_seg.weight'].shape[0] == 2
    assert not any(k.startswith(('student.', 'teacher.', 'discriminator.')) for k in exported)
    # the distiller config checks the export as well
    # the distiller config checks the export as well (in this process: no second start-up)
    from_distiller = export_tool().export_student(
        str(work / 'iter_2.pth'), str(root / 'from_distiller_config.pth'),
        str(root / distill_cfg))
    assert from_distiller.keys() == exported.keys()
    output = run(root, env, test, ['--cfg-options', *WORKERS])
    assert 'nucleus' in output and 'mIoU' in output


def test_detection_reviewkd_on_a_one_class_dataset(checkout):
    root, env = checkout
    teacher_cfg = 'configs/nuclei/retinanet_mobilenetv2_fpn128-gn_nuclei.py'
    distill_cfg = 'configs/nuclei/reviewkd_retinanet-mnv2_nuclei.py'
    log = run(root, env, f'python tools/train.py {teacher_cfg}', ['--cfg-options', *DET_SHORT])
    # 8 images in batches of 2: 4 iterations, far shorter than the 100-iteration warm-up
    assert 'LinearLR ends at iteration 100' in log and 'set warmup_iters' in log
    teacher = root / 'work_dirs' / 'retinanet_mobilenetv2_fpn128-gn_nuclei' / 'epoch_1.pth'
    assert weights(teacher)['bbox_head.retina_cls.weight'].shape[0] == 9  # 9 anchors x 1 class

    teacher_ckpt = shortened(Config.fromfile(str(root / distill_cfg)).teacher_ckpt)
    log = run(root, env, f'python tools/train.py {distill_cfg}',
              ['--cfg-options', *DET_SHORT, f'teacher_ckpt={teacher_ckpt}'])
    assert f'Loaded teacher checkpoint from {teacher_ckpt}' in log
    # the evaluator's annotation file moved with data_root
    assert 'data/nuclei/annotations/instances_val.json' in log
    state = weights(root / 'work_dirs' / 'reviewkd_retinanet-mnv2_nuclei' / 'epoch_1.pth')
    assert state['student.bbox_head.retina_cls.weight'].shape[0] == 9

    export, test = [c for c in doc_commands() if 'nuclei_retinanet_student' in c]
    run(root, env, export, short=True)
    exported = weights(root / 'work_dirs' / 'nuclei_retinanet_student.pth')
    assert exported['bbox_head.retina_cls.weight'].shape[0] == 9
    run(root, env, test, ['--cfg-options', *WORKERS])

"""Fashion-MNIST for the classification benchmarks: the data and the shared teacher.

The data comes from Debian's package ``dataset-fashion-mnist`` (``apt-get download``, unpacked
with ``dpkg-deb``; nothing is installed), gunzipped to the idx files mmpretrain's
``FashionMNIST`` reads. The teacher (``configs/baselines/resnet18-w32_...``) is trained once and
shared by every script that distils from it.
"""
import glob
import gzip
import os
import os.path as osp
import shutil
import subprocess
import tempfile

from mmengine.config import Config

from common import REPO_ROOT, run_config

DATA_ROOT = osp.join(REPO_ROOT, 'data', 'fashion_mnist')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'fashion_mnist')
TEACHER_CONFIG = osp.join(REPO_ROOT, 'configs', 'baselines',
                          'resnet18-w32_cifar_1xb128-15e_fashion-mnist.py')
STUDENT_CONFIG = osp.join(REPO_ROOT, 'configs', 'baselines',
                          'resnet18-w8_cifar_1xb128-15e_fashion-mnist.py')
FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
         't10k-labels-idx1-ubyte')


def prepare_data(root: str = DATA_ROOT) -> str:
    """Unpack Fashion-MNIST into ``root`` (once) and return it."""
    if all(osp.isfile(osp.join(root, f)) for f in FILES):
        return root
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(['apt-get', 'download', 'dataset-fashion-mnist'], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        deb, = glob.glob(osp.join(tmp, '*.deb'))
        subprocess.run(['dpkg-deb', '-x', deb, osp.join(tmp, 'x')], check=True)
        for name in FILES:
            src, = glob.glob(osp.join(tmp, 'x', '**', name + '.gz'), recursive=True)
            with gzip.open(src, 'rb') as fin, open(osp.join(root, name) + '.part', 'wb') as fout:
                shutil.copyfileobj(fin, fout)
            os.replace(osp.join(root, name) + '.part', osp.join(root, name))
    return root


def configure(cfg: Config, seed: int, epochs: int, data_root: str) -> Config:
    """Point a Fashion-MNIST config at the data and set seed and schedule length."""
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1  # validated once, after training
    for sched in cfg.param_scheduler:
        if sched.type == 'CosineAnnealingLR':
            sched.end = epochs
    cfg.default_hooks.checkpoint.interval = 1
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].num_workers = 1
    return cfg


def teacher_checkpoint(epochs: int, results_dir: str, data_root: str = DATA_ROOT) -> tuple:
    """Train (or reuse) the shared teacher; return its checkpoint path and its result."""
    cfg = configure(Config.fromfile(TEACHER_CONFIG), 0, epochs, data_root)
    result = run_config(f'teacher_{epochs}e', cfg, WORK_ROOT, results_dir,
                        reuse_needs=f'epoch_{epochs}.pth')
    return osp.join(result['work_dir'], f'epoch_{epochs}.pth'), result

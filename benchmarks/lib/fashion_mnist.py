"""Fashion-MNIST for the classification benchmarks: data, shared runs, the comparison.

The data comes from Debian's package ``dataset-fashion-mnist`` (``apt-get download``, unpacked
with ``dpkg-deb``; nothing is installed), gunzipped to the idx files mmpretrain's
``FashionMNIST`` reads. The teacher (``configs/baselines/resnet18-w32_...``, all 60000 training
images), the student alone and logit KD are trained once and shared by every benchmark that
compares with them (``benchmarks/results/fashion_mnist_runs``); each benchmark adds its own
method's runs (``benchmarks/results/<benchmark>_runs``). :func:`compare` runs the whole
comparison and reports it.

The budget (training-set size, epochs, the teacher's epochs, replayable views) is set by
options. Every run name holds it, and a summary of any budget but the first, small one (5000
images, 15 epochs: the committed ``<benchmark>.json``) goes to ``<benchmark>_<budget>.json``
(:func:`budget_tag`, e.g. ``stkd_fashion_mnist_60k-20e.json``), its own runs to
``<benchmark>_<budget>_runs/``: a new budget never reuses or replaces the small-budget results.

``--views V`` wraps every variant's training set in ``ReplayableViews`` (``V`` replayable
augmentation views per image, the same for every variant and seed) and gives the distillers of
``--cache-variants`` (default: logit KD) the teacher-output cache (``model.teacher_cache``, one
folder per variant, teacher and data, shared by the seeds): the teacher then runs about ``V``
times per image instead of once per epoch. Methods with batch augments (STKD's mixup) cannot
use it: the batch is mixed after the dataset, so a cached output would belong to another input
(``SingleTeacherDistiller._build_teacher_cache`` refuses them); they run the teacher every step
on the same views. ReviewKD's variants can, but are slower with it here (``CACHE_VARIANTS``).
"""
import argparse
import copy
import glob
import gzip
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from typing import Dict, Optional, Sequence

from mmengine.config import Config

from benchmarks.lib.common import REPO_ROOT, add_report_argument
from benchmarks.lib.common import compare as common_compare
from benchmarks.lib.common import run_config, teacher_run_name
from mmstructkd.engine import SafeRunner as Runner

DATA_ROOT = osp.join(REPO_ROOT, 'data', 'fashion_mnist')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'fashion_mnist')
TEACHER_CONFIG = osp.join(REPO_ROOT, 'configs', 'baselines',
                          'resnet18-w32_cifar_1xb128-15e_fashion-mnist.py')
STUDENT_CONFIG = osp.join(REPO_ROOT, 'configs', 'baselines',
                          'resnet18-w8_cifar_1xb128-15e_fashion-mnist.py')
#: Logit KD of the same pair: the comparison of every Fashion-MNIST distillation benchmark.
KD_CONFIG = osp.join(REPO_ROOT, 'configs', 'kd',
                     'kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py')
#: Variants whose runs every benchmark shares (same config, schedule, data, seeds).
SHARED_VARIANTS = ('student', 'kd')
#: The first, small budget: its summaries are the committed ``<benchmark>.json`` files.
SMALL_BUDGET = dict(subset=5000, epochs=15, teacher_epochs=3, teacher_subset=0, views=0)
#: Training images of Fashion-MNIST.
TRAIN_SIZE = 60000
#: Variants that read the teacher from the cache with ``--views`` by default. ReviewKD's
#: variants could (no batch augments) but are slower with it on this CPU: one cached view of
#: its five teacher stages is ~97 KB (fp16), and reading 128 of them per step (checksum, safe
#: unpickling, decoding) took 2.46 s against 1.29 s with the teacher run (measured, 1 thread);
#: logit KD's entries are 10 values: 0.36 s against 0.55-0.64 s.
CACHE_VARIANTS = ('kd', )
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


def configure(cfg: Config, seed: int, epochs: int, data_root: str,
              subset: Optional[int] = None) -> Config:
    """Point a Fashion-MNIST config at the data and set seed and schedule length.

    ``subset``: train on the first ``subset`` training images only (the dataset's ``indices``;
    Fashion-MNIST's training file is not ordered by class). ``None`` keeps all 60000.
    """
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    # Validated once, after training (common.run_config): mmengine's loop would also validate
    # at its last epoch whatever val_interval is, unless validation begins after it.
    cfg.train_cfg.val_interval = epochs + 1
    cfg.train_cfg.val_begin = epochs + 1
    for sched in cfg.param_scheduler:
        if sched.type == 'CosineAnnealingLR':
            sched.end = epochs
    # A 1-epoch run (smoke tests) is all warm-up: the cosine part would be empty (an error).
    cfg.param_scheduler = [s for s in cfg.param_scheduler
                           if s.get('begin', 0) < s.get('end', float('inf'))]
    cfg.default_hooks.checkpoint.interval = 1
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _inner(cfg[loader].dataset).data_root = data_root
        cfg[loader].num_workers = 1
    if subset is not None:
        _inner(cfg.train_dataloader.dataset).indices = subset
    return cfg


def _inner(dataset: dict) -> dict:
    """The dataset config inside wrappers such as ``ReplayableViews`` (``dataset=...``)."""
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset


def add_arguments(parser: argparse.ArgumentParser, results: str,
                  budget_named: bool = False) -> None:
    """The options every Fashion-MNIST benchmark shares (same defaults, so runs are shared).

    ``budget_named``: ``--results`` defaults to ``results`` for the small budget and to
    ``<results stem>_<budget tag>.json`` for any other (:func:`results_path`); also adds
    ``--views`` and the teacher cache's options.
    """
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=15, help='student epochs')
    parser.add_argument('--subset', type=int, default=5000,
                        help='students train on the first N training images (0: all 60000)')
    parser.add_argument('--teacher-epochs', type=int, default=3)
    parser.add_argument('--teacher-subset', type=int, default=0,
                        help='the teacher trains on the first N training images (0: all '
                        '60000; smaller only for smoke tests)')
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--work-dir', default=WORK_ROOT,
                        help='work dirs of the runs (teacher, student alone and logit KD are '
                        'shared by the benchmarks that use the same folder and settings)')
    default = osp.join(REPO_ROOT, 'benchmarks', 'results', results)
    if budget_named:
        parser.add_argument('--views', type=int, default=0,
                            help='wrap every variant\'s training set in ReplayableViews with V '
                            'views per image (0: the plain pipeline) and give the distillers '
                            'that allow it the teacher-output cache')
        parser.add_argument('--cache-dtype', default='fp16', choices=['fp16', 'bf16', 'fp32'],
                            help='storage type of the teacher cache (with --views)')
        parser.add_argument('--cache-variants', nargs='*', default=list(CACHE_VARIANTS),
                            help='with --views: the variants that read the teacher from the '
                            'cache (those whose method allows it; none: the teacher runs every '
                            'step, the cache\'s control)')
        parser.add_argument('--results', default=None,
                            help=f'summary JSON (default: {osp.relpath(default, REPO_ROOT)} for '
                            'the small budget, <stem>_<budget>.json otherwise, '
                            '<stem>_<budget>_probes.json with --probe)')
        parser.add_argument('--probe', nargs='+', action='append', default=[],
                            metavar='VARIANT@NAME KEY=VALUE',
                            help='one more variant: VARIANT\'s config with config options '
                            'changed (mmengine --cfg-options syntax), its runs named '
                            'VARIANT@NAME, e.g. --probe reviewkd@hcl2 '
                            'model.distill_losses.loss_hcl.loss_weight=2.0; repeatable. The '
                            'runs stay beside the budget\'s own (the student alone and KD of '
                            'the same seed are reused) and the summary goes to '
                            '<stem>_<budget>_probes.json')
        parser.set_defaults(results_default=default)
    else:
        parser.add_argument('--results', default=default)
    add_report_argument(parser)
    parser.add_argument('--teacher-only', action='store_true',
                        help='make the teacher (train it, or resume it, and keep its weights) '
                        'if a requested distilled run is unfinished, and stop: a long teacher '
                        'can then finish in a session of its own')


def _size_tag(n: Optional[int]) -> str:
    n = n or TRAIN_SIZE
    return f'{n // 1000}k' if n % 1000 == 0 else str(n)


def budget_tag(args: argparse.Namespace) -> str:
    """What sets a Fashion-MNIST budget apart from the small one, for file names: ``''`` for
    the small budget, else ``<images>-<epochs>e`` (``60k-20e``) plus ``_t<epochs>e[-<images>]``
    for another teacher and ``_v<views>`` for replayable views."""
    # 0 and None both mean "all images" / "no views"
    budget = {k: getattr(args, k, SMALL_BUDGET[k]) or 0 for k in SMALL_BUDGET}
    if budget == SMALL_BUDGET:
        return ''
    tag = f'{_size_tag(budget["subset"])}-{budget["epochs"]}e'
    if (budget['teacher_epochs'], budget['teacher_subset'] or 0) != (
            SMALL_BUDGET['teacher_epochs'], SMALL_BUDGET['teacher_subset']):
        tag += f'_t{budget["teacher_epochs"]}e'
        if budget['teacher_subset']:
            tag += f'-{_size_tag(budget["teacher_subset"])}'
    if budget['views']:
        tag += f'_v{budget["views"]}'
    return tag


def results_path(args: argparse.Namespace) -> str:
    """The summary JSON: ``--results`` when given, else the default named after the budget
    (sets ``args.results``)."""
    if getattr(args, 'results', None) is None:
        stem, ext = osp.splitext(args.results_default)
        tag = budget_tag(args)
        args.results = f'{stem}_{tag}{ext}' if tag else args.results_default
    return args.results


def add_probes(args: argparse.Namespace, variants: Dict[str, str]) -> Dict[str, str]:
    """The variants with the ``--probe`` ones added (``VARIANT@NAME``: VARIANT's config, its
    options in ``args.probe_options``) and requested; with probes, the runs stay in the
    budget's runs folder (``args.runs_dir``) and the summary defaults to
    ``<stem>_<budget>_probes.json``, so the budget's own summary is never replaced by a probe's
    table. Raises ValueError naming a malformed probe and the fix."""
    from mmengine.config import DictAction
    probes = getattr(args, 'probe', None) or []
    if not probes:
        return variants
    grid_results = results_path(args) if getattr(args, 'results', None) is None else None
    args.probe_options = dict(getattr(args, 'probe_options', None) or {})
    out = dict(variants)
    for probe in probes:
        name, settings = probe[0], probe[1:]
        base, _, tag = name.partition('@')
        usage = ('write --probe VARIANT@NAME KEY=VALUE [KEY=VALUE ...], e.g. --probe '
                 'reviewkd@hcl2 model.distill_losses.loss_hcl.loss_weight=2.0')
        if base not in variants or not tag or not all(c.isalnum() or c in '.-+' for c in tag):
            raise ValueError(f'--probe {" ".join(probe)}: "{name}" must be VARIANT@NAME with '
                             f'VARIANT one of {list(variants)} and NAME of letters, digits, '
                             f'".", "-", "+"; {usage}')
        if not settings or not all('=' in kv and kv.split('=', 1)[0] for kv in settings):
            raise ValueError(f'--probe {" ".join(probe)}: no KEY=VALUE after {name}; {usage}')
        if name in out:
            raise ValueError(f'--probe {name} is given twice; give each probe one name')
        # values parsed as --cfg-options parses them (mmengine's public DictAction)
        options_parser = argparse.ArgumentParser(add_help=False)
        options_parser.add_argument('--options', nargs='+', action=DictAction)
        options = options_parser.parse_args(['--options', *settings]).options
        out[name] = variants[base]
        args.probe_options[name] = options
        if name not in args.variants:
            args.variants = list(args.variants) + [name]
    if grid_results is not None:
        stem, ext = osp.splitext(grid_results)
        args.runs_dir = stem + '_runs'
        args.results = f'{stem}_probes{ext}'
    return out


def shared_runs_dir(args: argparse.Namespace) -> str:
    """Results of the runs every Fashion-MNIST benchmark shares (teacher, student, logit KD)."""
    return osp.join(osp.dirname(osp.abspath(results_path(args))), 'fashion_mnist_runs')


def teacher_checkpoint(args: argparse.Namespace) -> tuple:
    """Train (or reuse) the shared teacher; return its checkpoint path and its result."""
    subset = args.teacher_subset or None
    cfg = configure(Config.fromfile(TEACHER_CONFIG), 0, args.teacher_epochs, args.data_root,
                    subset=subset)
    name = f'teacher_{args.teacher_epochs}e-{subset or "all"}'
    # Its weights are kept beside its result (committed): the runs of a budget spread over
    # sessions all distil from this one teacher.
    result = run_config(name, cfg, args.work_dir, shared_runs_dir(args),
                        reuse_needs=f'epoch_{args.teacher_epochs}.pth', keep_weights=True)
    return result['weights'], result


def train_student(variant: str, config: str, seed: int, args: argparse.Namespace,
                  teacher_ckpt: str, runs_dir: str, options: Optional[dict] = None) -> dict:
    """Train (or reuse) one student run of ``config`` and return its result.

    The run name holds the schedule, the subset and (for distillers) the teacher, so runs of
    other settings are never reused. ``student`` and ``kd`` runs are kept in the shared folder:
    every benchmark compares with the same ones. ``options`` (``merge_from_dict`` keys) change
    what must not change the result, e.g. a cache folder.
    """
    subset = args.subset or None
    cfg = configure(Config.fromfile(config), seed, args.epochs, args.data_root, subset=subset)
    cfg.merge_from_dict(options or {})
    # a --probe variant (VARIANT@NAME): its config options, its own run name
    cfg.merge_from_dict((getattr(args, 'probe_options', None) or {}).get(variant, {}))
    name = f'{variant}_{args.epochs}e-{subset or "all"}'
    if 'teacher' in cfg.model:  # a distiller
        cfg.model.teacher_ckpt = teacher_ckpt
        name += f'_t{args.teacher_epochs}e-{args.teacher_subset or "all"}'
    views = getattr(args, 'views', 0)
    if views:
        name += f'_v{views}'
        cache = use_views(cfg, views, cache_dir=None
                          if variant not in getattr(args, 'cache_variants', CACHE_VARIANTS)
                          else osp.join(args.work_dir, 'teacher_cache',
                                        f'{variant}_{teacher_run_name(teacher_ckpt)}'
                                        f'_{subset or "all"}_v{views}_{args.cache_dtype}'),
                          dtype=getattr(args, 'cache_dtype', 'fp16'))
        if cache:
            name += f'-cache{args.cache_dtype}'
    if variant in SHARED_VARIANTS:
        runs_dir = shared_runs_dir(args)
    return run_config(f'{name}_seed{seed}', cfg, args.work_dir, runs_dir)


def cache_allowed(cfg: Config) -> bool:
    """Whether a distiller config can use the teacher-output cache: a teacher, and no batch
    augments in the student's data preprocessor (mixup-style methods mix after the dataset,
    so the teacher's output would belong to another input; the distiller refuses them)."""
    model = cfg.model
    if 'teacher' not in model:
        return False
    preprocessors = [model.get('data_preprocessor'), model.student.get('data_preprocessor'),
                     cfg.get('data_preprocessor')]
    return not any(p and p.get('batch_augments') for p in preprocessors)


def use_views(cfg: Config, views: int, cache_dir: Optional[str] = None,
              dtype: str = 'fp16') -> bool:
    """Wrap ``cfg``'s training set in ``ReplayableViews(num_views=views)`` and, if
    ``cache_dir`` is given and the method allows it (:func:`cache_allowed`), turn the teacher
    cache on in that folder. Returns whether the cache is on."""
    dataset = cfg.train_dataloader.dataset
    if dataset.get('type') != 'mmstructkd.ReplayableViews':
        cfg.train_dataloader.dataset = dict(type='mmstructkd.ReplayableViews', dataset=dataset,
                                            num_views=views)
    cache = cache_dir is not None and cache_allowed(cfg)
    if cache:
        cfg.model.teacher_cache = dict(dir=cache_dir, dtype=dtype)
    elif 'teacher' in cfg.model:
        cfg.model.teacher_cache = None
    return cache


METRIC = 'accuracy/top1'


def train_subset_top1(variant: str, config: str, seed: int, args: argparse.Namespace,
                      runs_dir: str) -> float:
    """Top-1 of a finished run's final student on the clean images it trained on (the training
    subset through the test pipeline): with the test top-1 it shows how well the student fits
    its data, i.e. whether it underfits (a regulariser such as mixup cannot help then) or
    overfits."""
    ckpt, _ = teacher_checkpoint(args)
    run = train_student(variant, config, seed, args, ckpt, runs_dir)  # finished: reused
    name = 'epoch_{}_student.pth' if 'teacher' in Config.fromfile(config).model \
        else 'epoch_{}.pth'
    cfg = configure(Config.fromfile(STUDENT_CONFIG), seed, args.epochs, args.data_root,
                    subset=args.subset or None)
    train_set = copy.deepcopy(cfg.train_dataloader.dataset)
    train_set.pipeline = cfg.test_dataloader.dataset.pipeline
    cfg.test_dataloader.dataset = train_set
    cfg.load_from = osp.join(run['work_dir'], name.format(args.epochs))
    cfg.work_dir = osp.join(run['work_dir'], 'train_subset_eval')
    cfg.log_level = 'WARNING'
    return Runner.from_cfg(cfg).test()[METRIC]


def compare(args: argparse.Namespace, variants: Dict[str, str], method: str, baseline: str,
            last_key: str, paired_with: Sequence[str] = ('student', 'kd')) -> dict:
    """Train the teacher and every variant for every seed, print the table, write the summary
    (:func:`common.compare` on Fashion-MNIST's shared runs; test top-1), with the same-seed
    differences against ``paired_with`` (those that were run)."""
    prepare_data(args.data_root)
    variants = add_probes(args, variants)
    results_path(args)
    views = getattr(args, 'views', 0)
    cached = [v for v in variants
              if views and v in getattr(args, 'cache_variants', CACHE_VARIANTS)
              and cache_allowed(Config.fromfile(variants[v]))]

    def header(teacher: dict) -> str:
        return (f'Fashion-MNIST test top-1 (10000 images); students: {args.epochs} epochs on '
                f'{args.subset or 60000} training images'
                + (f' ({views} replayable views each; teacher cache: {", ".join(cached)})'
                   if views else '') +
                f', seeds {list(args.seeds)}; teacher {teacher["metrics"][METRIC]:.2f} '
                f'({args.teacher_epochs} epochs on {args.teacher_subset or 60000})')

    settings = dict(seeds=list(args.seeds), epochs=args.epochs, subset=args.subset or None,
                    teacher_epochs=args.teacher_epochs,
                    teacher_subset=args.teacher_subset or None, budget=budget_tag(args) or
                    'small', views=views or None,
                    teacher_cache=dict(variants=cached, dtype=args.cache_dtype) if cached
                    else None, probes=getattr(args, 'probe_options', None) or None)
    return common_compare(args, variants, method, baseline, last_key, METRIC, 'top-1',
                          teacher_checkpoint, train_student, header, settings,
                          paired_with=[v for v in paired_with if v in variants])

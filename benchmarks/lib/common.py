"""Shared pieces of the benchmark scripts: resumable runs, results per run, seed spread.

Every run is a SafeRunner (mmengine's Runner with mmstructkd's safe loading) on a config. A
finished run writes ``<results_dir>/<name>.json`` (committed beside the summary, so a new
machine skips it), with its config's fingerprint: it is reused only for that config (a config
changed since, e.g. another stage tensor, is refused, naming the file); an interrupted one
resumes from the last checkpoint in ``<work_dir>/<name>``, only under the config and teacher
it started with (``run_identity.json`` there).
"""
import functools
import hashlib
import json
import os
import os.path as osp
import re
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config

# Registers mmstructkd's modules. Runs are SafeRunners: their checkpoints hold plain data, and
# resuming one (also of a plain teacher or student baseline) loads through the safe loader.
import mmstructkd  # noqa: F401
from mmstructkd.engine import SafeRunner as Runner
from mmstructkd.utils import atomic_save, safe_load

#: The repository's root (``benchmarks/lib/common.py`` is three levels below it).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

def imagenet_mobilenet_v2(out: str, layout: str = 'mmseg') -> str:
    """Write torchvision's ImageNet MobileNetV2, converted for OpenMMLab's ``MobileNetV2``
    (``backbone.`` prefix; ``layout`` ``'mmseg'``/``'mmpretrain'`` or ``'mmdet'``), to ``out``
    (once) and return ``out``."""
    from mmstructkd.utils.mobilenet_v2_converter import convert_torchvision_mobilenet_v2
    from mmstructkd.utils.pretrained import torchvision_mobilenet_v2_state
    if osp.isfile(out):
        return out
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    state = torchvision_mobilenet_v2_state('wheel')
    atomic_save(dict(state_dict=convert_torchvision_mobilenet_v2(state, layout=layout)), out)
    return out


def device_name() -> str:
    """What a run computed on: the GPU's name, or ``cpu``."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'


class RunNotFinished(Exception):
    """Raised by :func:`run_config` in report-only mode for a run without a result file.

    Args:
        name (str): The run.
        needs_teacher (bool): Whether the run loads a teacher checkpoint (a distiller).
    """

    def __init__(self, name: str, needs_teacher: bool = False) -> None:
        super().__init__(name)
        self.needs_teacher = needs_teacher


#: Set by :func:`compare` for ``--report``: report the finished runs, train nothing.
_report_only = False
#: Set by :func:`compare` while it looks up the teacher: its result file is enough. Results are
#: committed, checkpoints are not, so on a new machine a finished benchmark is tabulated (and a
#: finished comparison extended by a run without a teacher) without training the teacher again.
_result_suffices = False
#: Set by :func:`compare`: makes the teacher's checkpoint (trains, or resumes, the teacher) the
#: first time a distilled run has to train and its ``teacher_ckpt`` file is missing.
_ensure_teacher: Optional[Callable[[], None]] = None


def _teacher_ckpt_of(cfg: Optional[Config]) -> Optional[str]:
    """The local teacher checkpoint a distiller config loads (None: no distiller, or a URL)."""
    model = cfg.get('model') if cfg is not None else None
    ckpt = model.get('teacher_ckpt') if model is not None else None
    return ckpt if isinstance(ckpt, str) and '://' not in ckpt else None


def sha256_of(path: str) -> str:
    """The sha256 of a file (hex), kept per path, size and modification time."""
    stat = os.stat(path)
    return _sha256_cached(osp.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def keep_model_weights(checkpoint: str, out: str, name: str) -> str:
    """Write the model weights of a training checkpoint (no optimizer state, no config text)
    to ``out`` atomically and return the file's sha256."""
    state = safe_load(checkpoint, map_location='cpu', role='teacher run checkpoint')
    atomic_save(dict(state_dict=state['state_dict'],
                     meta=dict(run=name, source=osp.basename(checkpoint))), out)
    return sha256_of(out)


def teacher_run_name(teacher_ckpt: str) -> str:
    """The run a teacher checkpoint comes from: the work dir of a training checkpoint
    (``<run>/epoch_N.pth``, ``<run>/iter_N.pth``) or the stem of kept weights (``<run>.pth``,
    ``run_config(keep_weights=True)``)."""
    stem = osp.splitext(osp.basename(teacher_ckpt))[0]
    if re.fullmatch(r'(epoch|iter)_\d+', stem):
        return osp.basename(osp.dirname(osp.abspath(teacher_ckpt)))
    return stem


def kept_weights_valid(kept: str, result: dict) -> bool:
    """Whether ``kept`` is there and is the file whose sha256 ``result`` recorded."""
    return osp.isfile(kept) and sha256_of(kept) == result.get('weights_sha256')


#: What a run's training depends on, of its config: hashed by :func:`config_fingerprint`.
FINGERPRINT_KEYS = ('model', 'optim_wrapper', 'param_scheduler', 'custom_hooks', 'train_cfg')
#: Model keys left out of the fingerprint: the teacher's weights and its cache are files on this
#: machine, identified by their own sha256 (``teacher_sha256``), not by where they lie.
FINGERPRINT_SKIP = ('teacher_ckpt', 'teacher_cache')


def config_fingerprint(cfg: Config) -> str:
    """sha256 (16 hex digits) of what a run trains: its model, optimizer, schedulers, custom
    hooks and loop settings. Machine-specific values do not count: absolute paths inside the
    repository are taken relative to it (a frozen copy of the code elsewhere gives the same
    value), other absolute paths by their file name (pretrained weights in a work dir), and the
    teacher's checkpoint and cache are left out."""
    def normal(value):
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [normal(v) for v in value]
        if isinstance(value, str) and osp.isabs(value):
            path = osp.normpath(value)
            inside = path.startswith(osp.join(REPO_ROOT, ''))
            return osp.relpath(path, REPO_ROOT) if inside else osp.basename(path)
        return value

    picked = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    picked = Config(dict(fp=picked)).to_dict()['fp']  # ConfigDicts to plain dicts
    if isinstance(picked.get('model'), dict):
        picked['model'] = {k: v for k, v in picked['model'].items() if k not in FINGERPRINT_SKIP}
    text = json.dumps(normal(picked), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_config(result_file: str, result: dict, cfg: Optional[Config]) -> None:
    """A finished run is reused only for the config it trained (when its result recorded
    one): a changed config (another stage tensor, loss weight, schedule) is another run."""
    recorded = result.get('config_sha256')
    if recorded is None or cfg is None:
        return
    current = config_fingerprint(cfg)
    if current != recorded:
        raise ValueError(
            f'{result_file} was trained with another config (fingerprint {recorded}) than the '
            f'one asked for now ({current}): its result is not this config\'s. Move it aside '
            '(e.g. into results/superseded/) to train the run again, or restore the config it '
            'was trained with.')


def _check_teacher(result_file: str, result: dict, teacher_ckpt: Optional[str]) -> None:
    """A finished distilled run is reused only with the teacher it distilled from (when both
    are known): a teacher trained again elsewhere has other weights."""
    recorded = result.get('teacher_sha256')
    if recorded is None or teacher_ckpt is None or not osp.isfile(teacher_ckpt):
        return
    current = sha256_of(teacher_ckpt)
    if current != recorded:
        raise ValueError(
            f'{result_file} was distilled from another teacher (sha256 {recorded[:12]}) than '
            f'{teacher_ckpt} (sha256 {current[:12]}): move it aside to train it again with this '
            'teacher, or put that teacher back.')


#: What an interrupted run resumes under must be what it started with: kept in its work dir.
RUN_IDENTITY = 'run_identity.json'


def _check_resume(work_dir: str, resume: bool, identity: dict) -> None:
    """Refuse to resume a run whose checkpoints were trained with another config or teacher
    (a run interrupted at a session's end, the code changed before the next one): the result
    would mix two configs under one fingerprint. A fresh start records ``identity``; so does
    a resumed run started before identities were kept (nothing to compare with)."""
    path = osp.join(work_dir, RUN_IDENTITY)
    if resume and osp.isfile(path):
        with open(path) as f:
            started = json.load(f)
        changed = [k for k in identity if started.get(k) != identity[k]]
        if changed:
            raise ValueError(
                f'{work_dir} was started with another ' + ' and '.join(
                    f'{k} ({str(started.get(k))[:16]}, now {str(identity[k])[:16]})'
                    for k in changed) + ': its checkpoints are not this run\'s. Move the '
                'folder aside to start the run again, or restore what it was started with.')
        return
    write_json(path, identity)


def run_config(name: str, cfg: Config, work_root: str, results_dir: str, *,
               reuse_needs: Optional[str] = None, keep_weights: bool = False,
               before_val: Optional[Callable[[Runner], dict]] = None) -> dict:
    """Train ``cfg`` (or reuse its finished result) and return its validation metrics.

    Args:
        name (str): Run name: ``<work_root>/<name>`` and ``<results_dir>/<name>.json``.
        cfg (Config): The full config; its ``work_dir`` and ``resume`` are set here.
        work_root (str): Folder of the runs' work dirs (checkpoints, logs).
        results_dir (str): Folder of the per-run result files.
        reuse_needs (str, optional): File name in the run's work dir that must exist for a
            finished result to be reused (a teacher's checkpoint, which students load),
            except while :func:`compare` looks the teacher up.
        keep_weights (bool): A teacher run: write the model weights of its ``reuse_needs``
            checkpoint to ``<results_dir>/<name>.pth`` (committed beside the result: a new
            machine has no work dir, and the students of a benchmark spread over sessions
            must all distil from one teacher), their sha256 in the result
            (``weights_sha256``). The finished result is then also reused while that file is
            there with that sha256, and ``weights`` (the kept file) is returned; a finished
            run whose work-dir checkpoint is still there is kept at once.
        before_val (callable, optional): Called with the runner after training and before the
            final validation; the dict it returns (filled during validation) is stored as
            ``extra``.

    Returns:
        dict: ``metrics`` (the final validation), ``step_time_s`` (median over all iterations,
        robust to other jobs on the machine and restored on resume), ``train_time_s``
        (iterations x median step time), ``device`` (``cpu`` or the GPU), ``threads`` (torch's
        intra-op threads), ``work_dir``, the run's ``seed``, ``config_sha256``
        (:func:`config_fingerprint`: a finished run is reused only for that config, where its
        result recorded one); a distilled run trained since teachers are fingerprinted:
        ``teacher_sha256``; with ``keep_weights``: ``weights``.
    """
    if keep_weights and reuse_needs is None:
        raise ValueError(f'run_config({name!r}): keep_weights needs reuse_needs (the work-dir '
                         'checkpoint whose weights are kept)')
    work_dir = osp.join(work_root, name)
    result_file = osp.join(results_dir, f'{name}.json')
    kept = osp.join(results_dir, f'{name}.pth') if keep_weights else None
    extra_out = dict(weights=kept) if keep_weights else {}
    teacher_ckpt = _teacher_ckpt_of(cfg)
    if osp.isfile(result_file):
        with open(result_file) as f:
            finished = json.load(f)
        checkpoint = osp.join(work_dir, reuse_needs) if reuse_needs else None
        if keep_weights and osp.isfile(kept) and not kept_weights_valid(kept, finished):
            raise ValueError(
                f'{kept} is not the teacher {result_file} recorded (sha256 '
                f'{str(finished.get("weights_sha256"))[:12]}, the file {sha256_of(kept)[:12]}): '
                'restore it (git checkout), or move both aside to train the teacher again.')
        if keep_weights and not osp.isfile(kept) and osp.isfile(checkpoint):
            # trained before its weights were kept, its checkpoint still here: keep it now
            finished['weights_sha256'] = keep_model_weights(checkpoint, kept, name)
            write_json(result_file, finished)
        if (reuse_needs is None or _result_suffices or osp.isfile(checkpoint)
                or (keep_weights and kept_weights_valid(kept, finished))):
            _check_config(result_file, finished, cfg)
            _check_teacher(result_file, finished, teacher_ckpt)
            return dict(finished, work_dir=work_dir, **extra_out)
    if _report_only:
        raise RunNotFinished(name, needs_teacher=teacher_ckpt is not None)
    if teacher_ckpt is not None and not osp.isfile(teacher_ckpt) and _ensure_teacher is not None:
        _ensure_teacher()
    fingerprint = config_fingerprint(cfg)
    cfg.work_dir = work_dir
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    _check_resume(work_dir, cfg.resume, dict(
        config_sha256=fingerprint, teacher_sha256=sha256_of(teacher_ckpt)
        if teacher_ckpt is not None and osp.isfile(teacher_ckpt) else None))
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall_time = time.perf_counter() - start
    step_times = runner.message_hub.get_scalar('train/time').data[0]
    step_time = float(np.median(step_times))
    extra = before_val(runner) if before_val is not None else None
    metrics = {k: float(v) for k, v in runner.val().items()}
    result = dict(name=name, config=cfg.filename and osp.relpath(cfg.filename, REPO_ROOT),
                  seed=cfg.get('randomness', {}).get('seed'), iters=runner.iter,
                  step_time_s=round(step_time, 4), train_time_s=round(step_time * runner.iter, 1),
                  wall_time_this_invocation_s=round(wall_time, 1), resumed=bool(cfg.resume),
                  # step times compare only at equal threads (runs side by side take fewer)
                  device=device_name(), threads=torch.get_num_threads(),
                  config_sha256=fingerprint, metrics=metrics)
    if teacher_ckpt is not None and osp.isfile(teacher_ckpt):
        result['teacher_sha256'] = sha256_of(teacher_ckpt)
    if keep_weights:
        result['weights_sha256'] = keep_model_weights(osp.join(work_dir, reuse_needs), kept, name)
    if extra is not None:
        result['extra'] = extra
    write_json(result_file, result)
    return dict(result, work_dir=work_dir, **extra_out)


def seed_stats(values_by_variant: Dict[str, Dict[int, float]]) -> tuple:
    """Mean per variant and the largest seed-to-seed difference seen in any variant."""
    mean = {v: float(np.mean(list(by_seed.values())))
            for v, by_seed in values_by_variant.items()}
    spread = max((max(s.values()) - min(s.values()) for s in values_by_variant.values()),
                 default=0.0)
    return mean, float(spread)


def seed_std(values_by_variant: Dict[str, Dict[int, float]]) -> Dict[str, Optional[float]]:
    """Sample standard deviation (ddof=1) over the seeds of each variant (None for one seed)."""
    return {v: (float(np.std(list(s.values()), ddof=1)) if len(s) > 1 else None)
            for v, s in values_by_variant.items()}


def paired_differences(values_by_variant: Dict[str, Dict[int, float]],
                       references: Sequence[str]) -> Dict[str, Dict[str, dict]]:
    """Same-seed differences of every variant against each reference variant.

    For reference ``r`` and variant ``v``: ``d_s = v_s - r_s`` for every seed ``s`` both
    finished. Seeds pair runs that share the data order, the initialisation of the student and
    the augmentation draws as far as the methods allow, so ``d_s`` removes the part of the
    seed-to-seed variation the two runs share.

    Returns:
        dict: ``{r: {v: dict(per_seed={seed: d}, mean, std, min, max, n, positive)}}``;
        ``std`` is the sample std (None for one seed), ``positive`` the number of seeds with
        ``d_s > 0``. References that were not run are left out, and so are variants without
        a seed in common with the reference.
    """
    out: Dict[str, Dict[str, dict]] = {}
    for ref in references:
        if ref not in values_by_variant:
            continue
        base = values_by_variant[ref]
        out[ref] = {}
        for variant, by_seed in values_by_variant.items():
            seeds = [s for s in by_seed if s in base]
            if variant == ref or not seeds:
                continue
            diff = np.array([by_seed[s] - base[s] for s in seeds], dtype=float)
            out[ref][variant] = dict(
                per_seed={str(s): round(float(d), 2) for s, d in zip(seeds, diff)},
                mean=round(float(diff.mean()), 2),
                std=round(float(diff.std(ddof=1)), 2) if len(diff) > 1 else None,
                min=round(float(diff.min()), 2), max=round(float(diff.max()), 2),
                n=len(diff), positive=int((diff > 0).sum()))
    return out


def paired_table(paired: Dict[str, Dict[str, dict]], seeds: Sequence[int]) -> str:
    """The markdown table of :func:`paired_differences`: one row per variant and reference,
    each pair once (``b - a`` under reference ``a`` leaves out ``a - b`` under ``b``)."""
    rows = []
    refs = list(paired)
    for i, (ref, by_variant) in enumerate(paired.items()):
        for variant, d in by_variant.items():
            if variant in refs[:i]:
                continue
            rows.append([f'{variant} - {ref}', f'{d["mean"]:+.2f}',
                         '-' if d['std'] is None else f'{d["std"]:.2f}',
                         f'{d["min"]:+.2f}', f'{d["max"]:+.2f}', f'{d["positive"]}/{d["n"]}']
                        + [f'{d["per_seed"][str(s)]:+.2f}' if str(s) in d['per_seed'] else '-'
                           for s in seeds])
    return markdown_table(['paired difference', 'mean', 'std', 'min', 'max', 'seeds > 0']
                          + [f'seed {s}' for s in seeds], rows)


def markdown_table(header: list, rows: list) -> str:
    """A GitHub-markdown table (numbers right-aligned)."""
    def cell(x):
        return f'{x:.2f}' if isinstance(x, float) else str(x)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(cell(x) for x in row) + ' |' for row in rows]
    return '\n'.join(lines)


def add_report_argument(parser) -> None:
    """``--report``: the table of the runs finished so far, nothing trained (see
    :func:`compare`)."""
    parser.add_argument('--report', action='store_true',
                        help='train nothing: print the table of the runs finished so far '
                        '(cells of unfinished runs are "-") and write the summary marked '
                        '"complete": false while runs are missing')
    parser.add_argument('--no-summary', action='store_true',
                        help='train and print, but leave the summary JSON as it is: for one run '
                        'of a benchmark started on its own (benchmarks/bccd_parallel.sh), which '
                        'must not replace a finished summary by its one-run table')


def save_summary(args, summary: dict) -> None:
    """Write the summary to ``args.results`` unless ``args.no_summary``."""
    if not getattr(args, 'no_summary', False):
        write_json(args.results, summary)


def compare(args, variants: Dict[str, str], method: str, baseline: str, last_key: str,
            metric: str, metric_name: str, train_teacher: Callable, train_student: Callable,
            header: Callable[[dict], str], settings: dict, scale: float = 1.0,
            teacher_metric: Optional[str] = None,
            teacher_metric_name: Optional[str] = None,
            paired_with: Sequence[str] = ()) -> dict:
    """Train the teacher and every variant for every seed, print the table, write the summary.

    Args:
        args: ``seeds``, ``variants`` (the ones to run) and ``results`` (summary JSON path; the
            benchmark's own runs go to ``<results without .json>_runs``, or to ``runs_dir``
            when ``args`` has one: another summary of the same runs); optional ``report``:
            train nothing, tabulate the runs finished so far (a long CPU benchmark spread over
            sessions) and mark the summary ``complete: false`` while runs are missing;
            optional ``teacher_only``: only make the teacher's checkpoint, and only if a
            requested distilled run is unfinished (returns None). The teacher's result file is
            enough to tabulate; its checkpoint is (re)made when a distilled run has to train.
        variants (dict[str, str]): Variant name -> config, in table order.
        method (str): The variant the benchmark is about.
        baseline (str): The variant its headline gain is measured against.
        last_key (str): Name of the gain in the last line, ``<last_key>=+X.XX spread=Y.YY``.
        metric (str): Key of the validation metric (e.g. ``'accuracy/top1'``).
        metric_name (str): Its name in the table.
        train_teacher (callable): ``args -> (checkpoint, result)``.
        train_student (callable): ``(variant, config, seed, args, teacher_ckpt, runs_dir) ->
            result`` (see :func:`run_config`).
        header (callable): ``teacher result -> the line printed above the table``.
        settings (dict): Stored in the summary (schedule, data, ...).
        scale (float): Multiplies the metric for the table and the gains (100 for COCO mAP).
        teacher_metric (str, optional): The teacher's metric key when it is another task's
            (a classifier teacher of detectors); printed unscaled, as ``teacher_metric_name``.
            Defaults to ``metric``.
        teacher_metric_name (str, optional): Its name. Defaults to ``metric_name``.
        paired_with (sequence of str): Reference variants of the same-seed differences
            (:func:`paired_differences`), printed as a second table and stored as ``paired``.

    Returns:
        dict | None: None for ``teacher_only``; else the summary written to ``args.results``:
        ``gain`` (method minus baseline, mean over seeds), ``spread`` (the largest seed-to-seed
        difference of any variant),
        ``complete`` (every requested variant, method and baseline among them, ran every
        seed), ``not_requested`` (the benchmark's variants left out), ``gain_over_<variant>``
        for every other variant, settings, teacher and every run.
    """
    global _report_only, _result_suffices, _ensure_teacher
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    runs_dir = getattr(args, 'runs_dir', None) or osp.splitext(args.results)[0] + '_runs'
    teacher_only = bool(getattr(args, 'teacher_only', False))
    _report_only = bool(getattr(args, 'report', False))
    _result_suffices = True  # the checkpoint is made when a run needs it (ensure_teacher)
    try:
        teacher_ckpt, teacher = train_teacher(args)
    except RunNotFinished as e:
        _report_only = False
        raise SystemExit(f'--report: the teacher run "{e}" is not finished; run this script '
                         'without --report to train it') from None
    finally:
        _result_suffices = False
    latest = dict(teacher=teacher)

    def ensure_teacher() -> None:
        latest['teacher'] = train_teacher(args)[1]

    requested = [v for v in variants if v in args.variants]
    if teacher_only:
        # --teacher-only (runs side by side afterwards): the checkpoint, if a run needs it
        return _teacher_for_pending_runs(args, variants, requested, train_student,
                                         teacher_ckpt, runs_dir, ensure_teacher)
    if teacher_metric is None:
        print(f'teacher: {teacher["metrics"][metric] * scale:.2f} {metric_name}')
    else:
        print(f'teacher: {teacher["metrics"][teacher_metric]:.2f} {teacher_metric_name}')
    runs = {}
    _ensure_teacher = ensure_teacher
    try:
        for seed in args.seeds:
            for variant in requested:
                try:
                    runs[(variant, seed)] = result = train_student(
                        variant, variants[variant], seed, args, teacher_ckpt, runs_dir)
                except RunNotFinished:  # --report: an unfinished run is a '-' cell
                    continue
                print(f'{variant} seed {seed}: {result["metrics"][metric] * scale:.2f} '
                      f'{metric_name}')
    finally:
        _report_only = False  # never outlives this call, whatever stops it
        _ensure_teacher = None
    teacher = latest['teacher']

    seeds = list(args.seeds)
    chosen = [v for v in requested if any((v, s) in runs for s in seeds)]
    values = {v: {s: runs[(v, s)]['metrics'][metric] * scale for s in seeds if (v, s) in runs}
              for v in chosen}
    expected = len(requested) * len(seeds)
    # every requested variant ran every seed, and they include the headline comparison
    complete = len(runs) == expected and {method, baseline} <= set(requested)
    mean, spread = seed_stats(values)
    # A comparison whose variants were not run is NaN in the last line, null in the JSON.
    gains = {other: (mean[method] - mean[other] if {method, other} <= set(mean)
                     else float('nan')) for other in variants if other != method}
    rows = [[v, mean[v]] + [values[v].get(s, '-') for s in seeds] +
            [round(float(np.mean([runs[(v, s)]['train_time_s'] for s in values[v]])))]
            for v in chosen]
    print(header(teacher))
    if len(runs) < expected:
        print(f'PARTIAL: {len(runs)} of {expected} runs '
              'finished; a mean is over the finished seeds of its variant')
    elif not complete:
        print(f'PARTIAL: {method} and {baseline} were not both run; no gain')
    print(markdown_table(['variant', f'{metric_name} (mean)'] + [f'seed {s}' for s in seeds] +
                         ['train time (s/run)'], rows))
    std = seed_std(values)
    paired = paired_differences(values, paired_with) if paired_with else None
    if paired:
        print(f'\nPaired {metric_name} differences (same seed):')
        print(paired_table(paired, seeds))
    summary = dict(
        gain=_round(gains[baseline]), spread=_round(spread), complete=complete,
        # complete covers the requested variants; say which of the benchmark's were not
        not_requested=[v for v in variants if v not in requested],
        method=method, baseline=baseline,
        metric=metric, scale=scale, **{f'gain_over_{v}': _round(g) for v, g in gains.items()},
        mean={v: round(m, 2) for v, m in mean.items()},
        std={v: None if x is None else round(x, 2) for v, x in std.items()},
        **({} if paired is None else dict(paired=paired)), settings=settings,
        # no path of this machine: the kept weights relative to the summary
        teacher={k: osp.relpath(v, osp.dirname(osp.abspath(args.results))) if k == 'weights'
                 else v for k, v in teacher.items() if k != 'work_dir'},
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__, device=device_name()),
        runs=[dict(variant=v, seed=s, config=runs[(v, s)]['config'], value=values[v][s],
                   **{k: x for k, x in runs[(v, s)].items()
                      if k not in ('work_dir', 'config', 'seed')})
              for v in chosen for s in seeds if (v, s) in runs])
    save_summary(args, summary)
    print(f'{last_key}={gains[baseline]:+.2f} spread={spread:.2f}')
    return summary


def _teacher_for_pending_runs(args, variants: Dict[str, str], requested: list,
                              train_student: Callable, teacher_ckpt: str, runs_dir: str,
                              ensure_teacher: Callable[[], None]) -> None:
    """``--teacher-only``: make the teacher's checkpoint if a requested distilled run is not
    finished (and say so); a teacher that no pending run needs is not trained again."""
    global _report_only
    pending = []
    _report_only = True
    try:
        for seed in args.seeds:
            for variant in requested:
                try:
                    train_student(variant, variants[variant], seed, args, teacher_ckpt,
                                  runs_dir)
                except RunNotFinished as e:
                    if e.needs_teacher:
                        pending.append(str(e))
    finally:
        _report_only = False
    if not pending:
        print('teacher: not needed, every requested distilled run is finished')
        return None
    if not osp.isfile(teacher_ckpt):
        ensure_teacher()
    print(f'teacher: {teacher_ckpt} (for {len(pending)} unfinished runs)')
    return None


def write_json(path: str, data: dict) -> None:
    """Write ``data`` atomically: runs of one benchmark may finish side by side
    (``bccd_parallel.sh``), and a reader never sees half a file."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.part'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _round(x: float):
    return None if x != x else round(x, 2)  # NaN -> null

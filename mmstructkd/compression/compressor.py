"""BlockwiseCompressor: split, block-wise train, select under a budget, emit the student.

The steps of "Compact CNN Structure Learning by Knowledge Distillation" (Ahmed et al., ICPR
2020) on an MMPretrain classifier; the end-to-end KD fine-tune is the emitted
``SingleTeacherDistiller`` config, trained by the mmengine Runner (``tools/compress.py``).
"""
import copy
import os
import os.path as osp
import re
from dataclasses import asdict
from typing import Dict, Iterable, List, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn

from mmstructkd.registry import MODELS, build_own
from mmstructkd.utils.checkpoint import load_teacher_checkpoint
from mmstructkd.utils.safe_load import safe_load, scoped_checkpoint_loader
from .block_trainer import BlockwiseTrainer, CandidateResult, candidates_state
from .complexity import complexity, model_complexity
from .emission import dump, kd_config, save_checkpoint, student_config, student_state_dict
from .report import describe
from .search_space import build_candidates
from .selection import select_candidates
from .splitting import split_backbone

#: ``compression`` settings of a config, and their defaults.
DEFAULT_SETTINGS = dict(
    # (H, W) the FLOPs are counted at; None: the size of a validation batch.
    input_size=None,
    # <unit type>=space config and per_unit=dict(<unit name>=space config); see search_space.py.
    search_space=dict(),
    block_training=dict(iters=200, eval_iters=10, lr=1e-2, weight_decay=0.0,
                        inherit_weights=True, batch_size=None, log_interval=50),
    selection=dict(resolution=4000),
    finetune=dict(tau=4.0, loss_weight=1.0, logits='head.fc', feature_hints=False,
                  hint_weight=1.0),
)
BUDGET_KINDS = ('flops', 'params')
_SUFFIX = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}


def parse_budget(value: Union[str, float]) -> float:
    """``'0.5'`` -> 0.5 (a fraction of the teacher), ``'300M'`` / ``'3e8'`` -> 3e8 (absolute)."""
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.fullmatch(r'\s*([0-9.eE+-]+)\s*([kKmMgGtT]?)\s*', str(value))
        if not match:
            raise ValueError(f'cannot read the budget {value!r}: give a fraction of the teacher '
                             "(e.g. 0.5) or an absolute count (e.g. 3e8, 300M, 1.2G)")
        number = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if number <= 0:
        raise ValueError(f'the budget must be positive, got {value!r}')
    return number


def compression_settings(cfg: Config, overrides: Optional[dict] = None) -> dict:
    """:data:`DEFAULT_SETTINGS` updated (one level deep) by ``cfg.compression`` and
    ``overrides``."""
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    for source in (cfg.get('compression') or {}, overrides or {}):
        source = source.to_dict() if isinstance(source, ConfigDict) else dict(source)
        for key, value in source.items():
            if key not in settings:
                raise KeyError(f'unknown compression setting {key!r}; known: '
                               f'{sorted(settings)}')
            if isinstance(settings[key], dict) and isinstance(value, dict) \
                    and key != 'search_space':
                unknown = sorted(set(value) - set(settings[key]))
                if unknown:
                    raise KeyError(f'unknown compression.{key} settings {unknown}; known: '
                                   f'{sorted(settings[key])}')
                settings[key].update(copy.deepcopy(value))
            else:
                settings[key] = copy.deepcopy(value)
    return settings


def build_classifier(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's scope, with its top-level data preprocessor (as the
    Runner does)."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return ROOT_MODELS.build(model_cfg)


class BlockwiseCompressor:
    """Compresses the backbone of an MMPretrain classifier block by block.

    Args:
        cfg (Config): The teacher's config (optionally with a ``compression`` section, see
            :data:`DEFAULT_SETTINGS`).
        checkpoint (str, optional): The teacher's weights (loaded strictly). None keeps the
            config's initialisation (tests only).
        settings (dict, optional): Overrides of the ``compression`` section.
        config_path (str, optional): Where ``cfg`` came from (for the report).
    """

    def __init__(self, cfg: Config, checkpoint: Optional[str],
                 settings: Optional[dict] = None, config_path: Optional[str] = None) -> None:
        self.cfg = cfg
        self.config_path = config_path or cfg.filename
        self.checkpoint = checkpoint
        self.settings = compression_settings(cfg, settings)
        self.teacher = build_classifier(cfg)
        if checkpoint is None:
            with scoped_checkpoint_loader():  # a Pretrained init_cfg loads safely too
                self.teacher.init_weights()
        else:
            load_teacher_checkpoint(self.teacher, checkpoint, strict=True)
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        if not hasattr(self.teacher, 'backbone'):
            raise TypeError(f'{type(self.teacher).__name__} has no backbone: block-wise '
                            'compression needs an MMPretrain classifier (e.g. ImageClassifier).')
        self.split = split_backbone(self.teacher.backbone)
        self.candidates = build_candidates(self.split, self.settings['search_space'])
        self.input_shape = self._input_shape()
        self.teacher_complexity = model_complexity(self.teacher, self.input_shape)
        shapes = self._unit_input_shapes()
        self.costs: Dict[str, List[Dict[str, int]]] = {
            name: [complexity(build_own(MODELS, spec), shapes[name]) for spec in specs]
            for name, specs in self.candidates.items()}
        self.results: Optional[Dict[str, List[CandidateResult]]] = None

    # ------------------------------------------------------------------ set-up
    def _input_shape(self) -> Tuple[int, int, int]:
        channels = self.split.units[0].spec['in_channels']
        size = self.settings['input_size']
        if size is not None:
            size = (size, size) if isinstance(size, int) else tuple(size)
            return (channels, *size)
        batch = next(iter(self.build_loader('val_dataloader', batch_size=1)))
        inputs = self.teacher.data_preprocessor(batch, False)['inputs']
        return (channels, *inputs.shape[-2:])

    def _unit_input_shapes(self) -> Dict[str, Tuple[int, ...]]:
        shapes = {}
        handles = [self.teacher.backbone.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: shapes.__setitem__(name, tuple(args[0].shape[1:])))
            for name in self.candidates]
        try:
            with torch.no_grad():
                self.teacher.backbone(torch.zeros(1, *self.input_shape))
        finally:
            for handle in handles:
                handle.remove()
        return shapes

    def build_loader(self, key: str = 'train_dataloader',
                     batch_size: Optional[int] = None) -> Iterable:
        """A dataloader of the config (``batch_size`` overridden when given)."""
        loader_cfg = copy.deepcopy(self.cfg[key])
        if batch_size is not None:
            loader_cfg['batch_size'] = batch_size
        with DefaultScope.overwrite_default_scope(self.cfg.get('default_scope', 'mmpretrain')):
            return Runner.build_dataloader(loader_cfg, seed=self.cfg.get('randomness', {}).get(
                'seed', 0))

    # ------------------------------------------------------------------ the steps
    def search(self, loader: Optional[Iterable] = None,
               cache: Optional[str] = None) -> Dict[str, List[CandidateResult]]:
        """Train every candidate block-wise (or load the results from ``cache`` when it holds
        the same candidates) and store them in :attr:`results`.

        Args:
            loader (Iterable, optional): Batches as the config's dataloaders give them.
                Defaults to the config's ``train_dataloader``.
            cache (str, optional): File the results are read from / written to.
        """
        if cache is not None and osp.isfile(cache):
            saved = safe_load(cache, map_location='cpu', role='block-wise search cache')
            if saved['candidates'] == self.candidates:
                self.results = {n: [CandidateResult(**r) for r in rs]
                                for n, rs in saved['results'].items()}
                print_log(f'block-wise results loaded from {cache}', logger='current')
                return self.results
            print_log(f'{cache} holds other candidates: training again', logger='current',
                      level=30)
        train = dict(self.settings['block_training'])
        batch_size = train.pop('batch_size')
        if loader is None:
            loader = self.build_loader('train_dataloader', batch_size=batch_size)
        trainer = BlockwiseTrainer(self.teacher, self.candidates, **train)
        self.results = trainer.run(loader)
        if cache is not None:
            os.makedirs(osp.dirname(osp.abspath(cache)), exist_ok=True)
            torch.save(dict(candidates=self.candidates,
                            results={n: [asdict(r) for r in rs]
                                     for n, rs in self.results.items()}), cache + '.part')
            os.replace(cache + '.part', cache)
        return self.results

    def _fixed_costs(self) -> Dict[str, int]:
        """FLOPs / params of what no candidate replaces (stem, neck, head)."""
        names = list(self.candidates)
        return {k: self.teacher_complexity[''][k] - sum(self.costs[n][0][k] for n in names)
                for k in BUDGET_KINDS}

    def check_budget(self, kind: str, budget: Union[str, float]) -> float:
        """Refuse a budget no student of the search space meets, before any training.

        The candidates' costs are known from the start (:attr:`costs`), so an impossible budget
        is found here, not after the block-wise search.

        Returns:
            float: The budget as an absolute count.
        """
        if kind not in BUDGET_KINDS:
            raise ValueError(f'budget kind must be one of {BUDGET_KINDS}, got {kind!r}')
        value = parse_budget(budget)
        total = self.teacher_complexity[''][kind]
        absolute = value * total if value <= 1 else value
        names = list(self.candidates)
        fixed = self._fixed_costs()
        cheapest = fixed[kind] + sum(min(c[kind] for c in self.costs[n]) for n in names)
        if cheapest > absolute:
            raise ValueError(
                f'{kind} budget {absolute:.4g} ({budget}) cannot be met: the teacher has '
                f'{total:.4g}, its fixed parts (stem, neck, head) {fixed[kind]:.4g}, and the '
                f'cheapest student of this search space {cheapest:.4g} '
                f'({cheapest / total:.3f} of the teacher). Raise the budget or add cheaper '
                'candidates (compression.search_space).')
        return absolute

    def select(self, kind: str, budget: Union[str, float]) -> dict:
        """Choose one candidate per unit: least summed block-wise error within the budget.

        Args:
            kind (str): ``'flops'`` or ``'params'``.
            budget (str | float): At most 1: a fraction of the teacher's whole model; above 1:
                an absolute count (``'300M'`` also works).

        Returns:
            dict: ``choice`` (unit -> candidate index), ``budget`` (kind, given, absolute),
            ``predicted`` (whole-model FLOPs and params of the choice).
        """
        if self.results is None:
            raise RuntimeError('run search() before select(): the choice needs the block-wise '
                               'errors')
        absolute = self.check_budget(kind, budget)
        names = list(self.candidates)
        fixed = self._fixed_costs()
        picks = select_candidates([[c[kind] for c in self.costs[n]] for n in names],
                                  [[r.error for r in self.results[n]] for n in names],
                                  absolute - fixed[kind],
                                  resolution=self.settings['selection']['resolution'])
        choice = dict(zip(names, picks))
        predicted = {k: fixed[k] + sum(self.costs[n][i][k] for n, i in choice.items())
                     for k in BUDGET_KINDS}
        return dict(choice=choice, predicted=predicted,
                    budget=dict(kind=kind, given=str(budget), absolute=absolute))

    def emit(self, selection: dict, out_dir: str) -> dict:
        """Write the student config, its checkpoints and the KD fine-tune config.

        Files in ``out_dir``: ``teacher.py`` (the teacher's config), ``student.py`` (a
        normal MMPretrain config), ``student_blockwise.pth`` (teacher stem/neck/head + the
        block-wise trained blocks), ``student_init.pth`` (the same blocks before block-wise
        training), ``kd.py`` (``SingleTeacherDistiller`` starting from
        ``student_blockwise.pth``), ``report.json`` is written by the caller.

        Returns:
            dict: The paths and the ``report`` (see :mod:`.report`; accuracies not yet in).
        """
        os.makedirs(out_dir, exist_ok=True)
        choice = selection['choice']
        replaced = {n: self.candidates[n][i] for n, i in choice.items()}
        backbone_cfg = self.split.backbone_cfg(replaced)
        teacher_cfg = Config(copy.deepcopy(self.cfg.to_dict()))
        for key in ('compression', 'work_dir', 'load_from', 'resume'):
            teacher_cfg.pop(key, None)
        paths = dict(teacher=dump(teacher_cfg, osp.join(out_dir, 'teacher.py')))
        cfg = student_config(self.cfg, backbone_cfg)
        paths['student'] = dump(cfg, osp.join(out_dir, 'student.py'))

        teacher_state = self.teacher.state_dict()
        meta = dict(source='mmstructkd block-wise compression', budget=selection['budget'],
                    choice=choice)
        for name, trained in (('student_blockwise', True), ('student_init', False)):
            state = student_state_dict(teacher_state, list(choice),
                                       candidates_state(self.results, choice, trained=trained))
            paths[name] = save_checkpoint(state, osp.join(out_dir, f'{name}.pth'),
                                          dict(meta, blockwise_trained=trained))
        student = build_classifier(cfg)
        state = safe_load(paths['student_blockwise'], map_location='cpu',
                          role='block-wise student checkpoint')['state_dict']
        student.load_state_dict(state, strict=True)  # the emitted pair must match exactly
        measured = model_complexity(student, self.input_shape)['']

        finetune = self.settings['finetune']
        hints = finetune['feature_hints']
        if hints is True:
            hints = [n for n, i in choice.items() if i != 0]
        kd = kd_config(cfg, '{{fileDirname}}/teacher.py',
                       osp.abspath(self.checkpoint) if self.checkpoint else None,
                       '{{fileDirname}}/student_blockwise.pth', tau=finetune['tau'],
                       loss_weight=finetune['loss_weight'], logits=finetune['logits'],
                       hint_units=hints or None, hint_weight=finetune['hint_weight'])
        paths['kd'] = dump(kd, osp.join(out_dir, 'kd.py'))
        return dict(paths, report=self.report(selection, measured))

    def report(self, selection: dict, measured: Dict[str, int]) -> dict:
        """Per unit: teacher and chosen block, FLOPs / params before and after, block-wise
        error; whole-model totals of teacher and student."""
        rows = []
        for name, index in selection['choice'].items():
            before, after = self.costs[name][0], self.costs[name][index]
            rows.append(dict(unit=name, teacher_block=describe(self.candidates[name][0]),
                             chosen_block=describe(self.candidates[name][index]),
                             candidate=index, flops_before=before['flops'],
                             flops_after=after['flops'], params_before=before['params'],
                             params_after=after['params'],
                             error=self.results[name][index].error,
                             candidates=len(self.candidates[name])))
        teacher = dict(self.teacher_complexity[''])
        return dict(teacher_config=self.config_path, teacher_checkpoint=self.checkpoint,
                    input_shape=list(self.input_shape), budget=selection['budget'],
                    units=rows, teacher=teacher, student=dict(measured),
                    flops_ratio=measured['flops'] / teacher['flops'],
                    params_ratio=measured['params'] / teacher['params'],
                    predicted=selection['predicted'])

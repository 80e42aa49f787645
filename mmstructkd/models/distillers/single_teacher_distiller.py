"""The single-teacher distiller: one frozen teacher, one student, configurable losses."""
import copy
import inspect
import json
from typing import Any, Dict, List, NamedTuple, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from mmstructkd.models.recorders.base_recorder import select_record
from mmstructkd.models.recorders.recorder_manager import RecorderManager
from mmstructkd.models.stages.base_stage import StepInputs
from mmstructkd.registry import MODELS, build_own
from mmstructkd.utils.checkpoint import load_teacher_checkpoint
from mmstructkd.utils.config_utils import (apply_num_classes, build_model_from_spec,
                                           set_num_classes)
from .teacher_inputs import TeacherInputAdapter
from .teacher_provider import TeacherProvider

#: Keys a mapping of a loss (or stage) argument may have: a recorded tensor
#: (``from_student``, ``recorder``, ``record_idx``, ``data_idx``, optionally through a
#: ``connector`` with ``connector_kwargs``) or a stage's record (``from_stage``, ``output``).
MAPPING_KEYS = {'from_student', 'recorder', 'record_idx', 'data_idx', 'connector',
                'connector_kwargs', 'from_stage', 'output'}


class StepRecords(NamedTuple):
    """Everything recorded or computed in one distillation step, by where it comes from."""
    teacher: Dict[str, list]  # recorder name -> items (the teacher provider's records)
    student: Dict[str, list]  # recorder name -> items
    stages: Dict[str, Dict[str, Any]]  # stage name -> record name -> value


class StepResult(NamedTuple):
    """What :meth:`SingleTeacherDistiller.distill_step` returns."""
    losses: Dict[str, Tensor]
    records: StepRecords
    distilled: bool  # False: no distillation this step (switched off, or skipped non-finite)


def _to_fp32(obj: Any) -> Any:
    """Cast floating tensors (also inside lists, tuples and dicts: a recorded method's
    arguments) to fp32: losses run in fp32 under AMP."""
    if isinstance(obj, Tensor):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, tuple) and hasattr(obj, '_fields'):  # a NamedTuple
        return type(obj)(*(_to_fp32(x) for x in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_fp32(x) for x in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _to_fp32(v)) for k, v in obj.items())
    return obj


def _check_loss_weight(name: str, loss: nn.Module) -> None:
    """A distillation loss with a negative ``loss_weight`` pushes the student away from the
    teacher: refused."""
    weight = getattr(loss, 'loss_weight', None)
    if weight is None:
        return
    values = weight.values() if isinstance(weight, dict) else \
        weight if isinstance(weight, (list, tuple)) else [weight]
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):  # not one number: not checked
            continue
        if number < 0:
            raise ValueError(
                f'distill_losses["{name}"] ({type(loss).__name__}) has loss_weight={weight}: a '
                'negative weight maximises the distance to the teacher. Use a weight >= 0 (0 '
                'switches the loss off; DistillLossWeightHook schedules it over training).')


@MODELS.register_module()
class SingleTeacherDistiller(BaseModel):
    """Distils a frozen teacher into a student through recorded tensors and losses.

    One training step (:meth:`distill_step`), top to bottom:

    1. the student's data preprocessor has prepared the batch (teacher and student see the same
       tensor);
    2. **teacher**: :class:`TeacherProvider` returns the teacher's records (name -> recorded
       items): input adapter, runtime, forward under ``no_grad`` in eval mode only as far as its
       recorders need, or a read of the teacher cache;
    3. **student**: ``mode='loss'`` with its recorders on; its task losses are logged as
       ``student.<name>``;
    4. **stages** (``distill_stages``, in order): work that needs a model or the data samples
       (the detector's positives, teacher features of box crops, the mixing record, label maps)
       puts named records into the step;
    5. **losses**: each distillation loss gets tensors only, as ``loss_forward_mappings`` say
       (recorded tensors, optionally through a connector, or a stage's records), in fp32, and
       is logged as ``distill.<name>``.

    Validation and testing run the student alone.

    Args:
        student (dict | nn.Module): The student: a model config (e.g. ``_base_.model`` of the
            stock config this config inherits) or ``dict(cfg_path='mmseg::...')``.
        teacher (dict | nn.Module): The teacher, likewise; usually
            ``dict(cfg_path='mmseg::pspnet/pspnet_r101-d8_...py')``.
        teacher_ckpt (str, optional): Local path or URL of the teacher's weights, loaded on the
            CPU by :meth:`init_weights` (the Runner calls it before training, not before
            testing, so ``tools/test.py`` never needs it). Without it the teacher keeps its
            config's initialisation (a warning says so).
        teacher_ckpt_strict (bool): Whether missing/unexpected teacher keys are errors.
        num_classes (int, optional): The class count of student and teacher: every
            ``num_classes`` of their model configs (heads; mmpretrain's data preprocessor),
            also of a teacher given by ``cfg_path``, is set to it before they are built, so a
            distillation config is retargeted to another dataset in one place (the configs
            here take it from the top-level ``num_classes``, see ``docs/own_data.md``).
            ``AdversarialDistiller`` sizes its critic from the teacher's map. None (default)
            builds both as configured.
        student_recorders (dict, optional): Name -> recorder config on the student, e.g.
            ``dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'))``.
        teacher_recorders (dict, optional): Likewise on the teacher.
        connectors (dict, optional): Name -> connector config (trainable modules that map a
            recorded tensor before a loss sees it, e.g. ``ConvConnector``).
        distill_losses (dict, optional): Name -> loss config. Names must contain ``'loss'``
            (mmengine sums only those); each is logged as ``distill.<name>``.
        loss_forward_mappings (dict, optional): Loss name -> {argument name -> mapping}. A
            mapping is ``dict(from_student=bool, recorder=name, record_idx=None|int|'all',
            data_idx=None|int, connector=None|name)``; ``recorder`` may be a list of names,
            which gives the loss (or the connector) a list of tensors, one per recorder (e.g.
            one per backbone stage); ``record_idx`` and ``data_idx`` then apply to each, or
            are lists with one entry per recorder (e.g. the pre-activation stages of a
            ResNet, ``record_idx=-1, data_idx=0`` of a ``ModuleInputs`` on the last block's
            ReLU, next to a pooled embedding that needs neither: ``None``).
            ``connector_kwargs=dict(arg=<mapping>)`` passes the connector further recorded
            tensors by keyword (e.g. the teacher's stages, whose
            sizes ``ReviewKDConnector(output_size='teacher')`` takes). A stage's record is
            ``dict(from_stage=<stage name>, output=<record name>)``.
        distill_stages (dict, optional): Stage name -> stage config
            (:class:`~mmstructkd.models.stages.DistillStage`), run in this order after the
            student's forward, e.g. ``dict(cls2det=dict(type='Cls2DetStage', ...))``.
        stage_forward_mappings (dict, optional): Stage name -> {argument name -> mapping}, as
            ``loss_forward_mappings`` (a stage may read the records of the stages before it).
        calculate_student_loss (bool): Add the student's own task losses (logged as
            ``student.<name>``). Defaults to True.
        teacher_forward (str): ``'auto'`` stops the teacher's forward once its recorders are
            complete; ``'full'`` always runs it to the end. Defaults to ``'auto'``. Compiling
            the teacher needs ``'full'``: ``'auto'`` stops the forward by raising an exception
            from a forward hook, on which ``torch.compile`` gives up and runs the whole teacher
            eagerly.
        teacher_runtime (dict, optional): How the teacher's forward runs:
            ``dict(precision='inherit'|'fp32'|'bf16'|'fp16', flush_denormal=False,
            channels_last=False, compile=False, check_deviation=True)`` (these are the
            defaults; see :class:`TeacherRuntime`). Settings that change the teacher's outputs
            measurably are off by default; when one is on, the first step logs the deviation of the
            teacher's recorded outputs from the fp32 teacher (kept in
            :attr:`teacher_deviation`). Losses always get fp32 inputs.
        teacher_cache (dict, optional): Read the teacher's recorded outputs from a disk cache
            instead of recomputing them (offline teacher; :class:`TeacherCache`):
            ``dict(dir=..., dtype='fp16', topk=None, scale=None, max_size_gb=20, verify=True)``,
            ``topk`` / ``scale`` per teacher recorder (``dict(logits=5)``). Needs the training
            dataset wrapped in ``mmstructkd.ReplayableViews`` (replayable augmentation, one
            key per sample view) and no batch augments. A cache built for another teacher,
            config or dataset is refused.
        teacher_mode (str): The ``mode`` the teacher's forward runs in. Defaults to
            ``'tensor'`` (backbone, neck and head outputs; no losses, no post-processing).
        skip_nonfinite (bool): What a distillation loss that is NaN or infinite does: False
            (default) raises an error naming it; True drops that step's distillation losses
            (the student still takes its task-loss step) with a warning, counted in
            :attr:`nonfinite_steps`.
        data_preprocessor (dict, optional): The student's data preprocessor config when the
            student config does not hold one (the Runner passes a config's top-level
            ``data_preprocessor`` here, as mmpretrain configs need). The distiller always
            preprocesses with the student's; a teacher trained with another normalisation gets
            the batch converted to it.
        init_cfg (dict, optional): Initialisation config of the distiller itself.
    """

    def __init__(self,
                 student: Union[dict, nn.Module],
                 teacher: Union[dict, nn.Module],
                 teacher_ckpt: Optional[str] = None,
                 teacher_ckpt_strict: bool = True,
                 num_classes: Optional[int] = None,
                 student_recorders: Optional[Dict[str, dict]] = None,
                 teacher_recorders: Optional[Dict[str, dict]] = None,
                 connectors: Optional[Dict[str, dict]] = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 loss_forward_mappings: Optional[Dict[str, Dict[str, dict]]] = None,
                 distill_stages: Optional[Dict[str, dict]] = None,
                 stage_forward_mappings: Optional[Dict[str, Dict[str, dict]]] = None,
                 calculate_student_loss: bool = True,
                 teacher_forward: str = 'auto',
                 teacher_mode: str = 'tensor',
                 teacher_runtime: Optional[dict] = None,
                 teacher_cache: Optional[dict] = None,
                 skip_nonfinite: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        # A data_preprocessor given here is what the Runner passes from a config's top level
        # (mmpretrain configs keep it there): it belongs to the student, as for a plain model.
        if num_classes is not None and data_preprocessor is not None:
            data_preprocessor = copy.deepcopy(data_preprocessor)
            set_num_classes(data_preprocessor, num_classes, 'data_preprocessor')
        # Specs whose class count already matches stay as given (the teacher cache's
        # fingerprint of the teacher spec does not change).
        student = apply_num_classes(student, num_classes, 'student')
        teacher = apply_num_classes(teacher, num_classes, 'teacher')
        student_model = build_model_from_spec(student, 'student', data_preprocessor)
        super().__init__(data_preprocessor=student_model.data_preprocessor, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.student = student_model
        self.teacher = build_model_from_spec(teacher, 'teacher')
        self.teacher_input_adapter = TeacherInputAdapter(
            self.student.data_preprocessor, getattr(self.teacher, 'data_preprocessor', None))
        self.teacher_ckpt = teacher_ckpt
        self.teacher_ckpt_strict = teacher_ckpt_strict
        if teacher_ckpt is None:
            print_log(
                'SingleTeacherDistiller: no teacher_ckpt given, so the teacher keeps the '
                "initialisation of its config (random where it has no init_cfg). Distilling "
                'from it only makes sense if that loads trained weights.',
                logger='current', level=30)
        self.teacher.requires_grad_(False)
        self.teacher.eval()

        if teacher_forward not in ('auto', 'full'):
            raise ValueError(f'teacher_forward must be "auto" or "full", got {teacher_forward!r}')
        self.teacher_mode = teacher_mode
        self.calculate_student_loss = calculate_student_loss

        self.student_recorders = RecorderManager(student_recorders)
        self.teacher_recorders = RecorderManager(teacher_recorders)
        self.student_recorders.prepare(self.student)
        self.teacher_recorders.prepare(self.teacher)
        if teacher_cache and getattr(self.student.data_preprocessor, 'batch_augments',
                                     None) is not None:
            raise ValueError(
                'teacher_cache cannot be used with batch augments (the student\'s '
                'data_preprocessor.batch_augments): they mix or change samples after the '
                'dataset, so a cached teacher output would belong to another input.')
        self.teacher_provider = TeacherProvider(
            self.teacher, self.teacher_recorders, self.teacher_input_adapter, mode=teacher_mode,
            stop_early=teacher_forward == 'auto', runtime=teacher_runtime, cache=teacher_cache,
            fingerprint=dict(teacher=teacher, teacher_mode=teacher_mode,
                             teacher_runtime=teacher_runtime))

        self.connectors = nn.ModuleDict(
            {name: build_own(MODELS, cfg) for name, cfg in (connectors or {}).items()})
        self.distill_stages = nn.ModuleDict(
            {name: build_own(MODELS, cfg) for name, cfg in (distill_stages or {}).items()})
        self.distill_losses = nn.ModuleDict()
        for name, cfg in (distill_losses or {}).items():
            if 'loss' not in name:
                raise ValueError(f'distill loss name "{name}" must contain "loss": mmengine '
                                 'sums only the outputs whose name does (e.g. "loss_kd").')
            self.distill_losses[name] = build_own(MODELS, cfg)
            _check_loss_weight(name, self.distill_losses[name])
        self.skip_nonfinite = skip_nonfinite
        #: Steps whose distillation losses were dropped as non-finite (``skip_nonfinite``).
        self.nonfinite_steps = 0
        self.loss_forward_mappings = dict(loss_forward_mappings or {})
        self.stage_forward_mappings = dict(stage_forward_mappings or {})
        self._check_mappings()
        #: Runtime multiplier of each distillation loss, set by DistillLossWeightHook.
        self.loss_scales: Dict[str, float] = {name: 1.0 for name in self.distill_losses}

    # ------------------------------------------------------------------ set-up checks
    def _check_mappings(self) -> None:
        for what, mappings, modules in (
                ('loss', self.loss_forward_mappings, self.distill_losses),
                ('stage', self.stage_forward_mappings, self.distill_stages)):
            extra = sorted(set(mappings) - set(modules))
            if extra:
                raise ValueError(f'{what}_forward_mappings name {what}s that are not in '
                                 f'distill_{what}s: {extra}; defined {what}s: '
                                 f'{sorted(modules)}')
        stages = list(self.distill_stages)
        for i, (name, stage) in enumerate(self.distill_stages.items()):
            self._check_module_mapping('stage', name, stage,
                                       self.stage_forward_mappings.get(name, {}),
                                       earlier_stages=stages[:i], skip=('step', ))
        for name, loss in self.distill_losses.items():
            self._check_module_mapping('loss', name, loss,
                                       self.loss_forward_mappings.get(name, {}),
                                       earlier_stages=stages)

    def _check_module_mapping(self, what: str, name: str, module: nn.Module,
                              mapping: Dict[str, dict], earlier_stages: List[str],
                              skip: tuple = ()) -> None:
        """Check that ``mapping`` fills every required argument of ``module.forward`` from
        recorders, connectors or the stages it may read."""
        params = {k: p for k, p in inspect.signature(module.forward).parameters.items()
                  if k not in skip}
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for arg, spec in mapping.items():
            where = f'{what}_forward_mappings["{name}"]["{arg}"]'
            if arg not in params and not accepts_any:
                raise ValueError(f'{where}: {type(module).__name__}.forward has no argument '
                                 f'"{arg}"; its arguments are {list(params)}.')
            self._check_mapping(where, spec, earlier_stages)
            if isinstance(spec, dict) and 'from_stage' in spec:
                check = getattr(module, 'check_stage', None)
                if check is not None:  # e.g. Cls2DetLoss: the stage makes what it compares
                    check(self.distill_stages[spec['from_stage']])
        missing = [arg for arg, p in params.items()
                   if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                          p.KEYWORD_ONLY)
                   and arg not in mapping]
        if missing:
            # A module may say where an argument comes from (e.g. a stage that makes it).
            sources = getattr(module, 'ARG_SOURCES', {})
            hints = ''.join(f' "{arg}" comes from {sources[arg]}.' for arg in missing
                            if arg in sources)
            raise ValueError(f'{what} "{name}" ({type(module).__name__}) needs arguments '
                             f'{missing} that {what}_forward_mappings["{name}"] does not map '
                             f'to a recorder or a stage output.{hints}')

    def _check_mapping(self, where: str, spec: Any,
                       stages: Optional[List[str]] = None) -> None:
        if isinstance(spec, dict) and 'from_stage' in spec:
            self._check_stage_mapping(where, spec, list(self.distill_stages)
                                      if stages is None else stages)
            return
        if not isinstance(spec, dict) or 'recorder' not in spec or 'from_student' not in spec:
            raise ValueError(f'{where} must be dict(from_student=True|False, recorder=NAME, '
                             f'...) or dict(from_stage=NAME, output=NAME), got {spec!r}')
        unknown = set(spec) - MAPPING_KEYS | (set(spec) & {'output'})
        if unknown:
            raise ValueError(f'{where} has unknown keys {sorted(unknown)}; allowed: '
                             f'{sorted(MAPPING_KEYS - {"from_stage", "output"})}')
        recorders = self.student_recorders if spec['from_student'] else self.teacher_recorders
        side = 'student' if spec['from_student'] else 'teacher'
        names = spec['recorder']
        if isinstance(names, (list, tuple)):
            if not names or not all(isinstance(n, str) for n in names):
                raise ValueError(f'{where}: recorder must be a name or a non-empty list of '
                                 f'names, got {names!r}')
        else:
            names = [names]
        for name in names:
            if name not in recorders:
                raise ValueError(f'{where}: no {side} recorder named "{name}"; '
                                 f'{side}_recorders defines {sorted(recorders.recorders)}.')
        for key in ('record_idx', 'data_idx'):
            per_recorder = spec.get(key)
            if isinstance(per_recorder, (list, tuple)) and (
                    not isinstance(spec['recorder'], (list, tuple))
                    or len(per_recorder) != len(names)):
                raise ValueError(
                    f'{where}: {key}={list(per_recorder)} is a list, so it needs one entry per '
                    f'recorder of a list recorder=[...] ({len(names)} here: '
                    f'{spec["recorder"]!r}); give one value for all, or one per recorder.')
        connector = spec.get('connector')
        if connector is not None and connector not in self.connectors:
            raise ValueError(f'{where}: no connector named "{connector}"; connectors defines '
                             f'{sorted(self.connectors)}.')
        kwargs = spec.get('connector_kwargs')
        if kwargs is not None:
            if connector is None or not isinstance(kwargs, dict):
                raise ValueError(f'{where}: connector_kwargs must be a dict of argument name -> '
                                 'mapping, next to connector=NAME.')
            params = inspect.signature(self.connectors[connector].forward).parameters
            for arg, sub_spec in kwargs.items():
                if arg not in params:
                    raise ValueError(f'{where}: connector "{connector}" '
                                     f'({type(self.connectors[connector]).__name__}.forward) has '
                                     f'no argument "{arg}"; its arguments are {list(params)}.')
                self._check_mapping(f'{where}["connector_kwargs"]["{arg}"]', sub_spec, stages)

    def _check_stage_mapping(self, where: str, spec: dict, stages: List[str]) -> None:
        if set(spec) != {'from_stage', 'output'}:
            raise ValueError(f'{where}: a stage record is dict(from_stage=NAME, output=NAME), '
                             f'got {spec!r}')
        stage = spec['from_stage']
        if stage not in stages:
            known = sorted(self.distill_stages)
            raise ValueError(f'{where}: no stage "{stage}" runs before it; distill_stages '
                             f'defines {known} (a stage reads only the stages before it).')
        stage_type = type(self.distill_stages[stage])
        if spec['output'] not in stage_type.OUTPUTS:
            raise ValueError(f'{where}: stage "{stage}" ({stage_type.__name__}) has no output '
                             f'"{spec["output"]}"; it outputs {list(stage_type.OUTPUTS)}.')

    def init_weights(self) -> None:
        """Load the teacher checkpoint, then initialise the rest (the student by its config)."""
        if self.teacher_ckpt is not None:
            load_teacher_checkpoint(self.teacher, self.teacher_ckpt,
                                    strict=self.teacher_ckpt_strict)
            # Its weights come from the checkpoint: the teacher's own init must not run.
            self.teacher._is_init = True
        super().init_weights()

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> 'SingleTeacherDistiller':
        """Set train/eval mode; the whole teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Any:
        """``mode='loss'`` distils; ``'predict'`` and ``'tensor'`` run the student alone."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    @property
    def teacher_deviation(self) -> Optional[Dict[str, Dict[str, Optional[float]]]]:
        """Per teacher recorder, how far the cheap teacher (``teacher_runtime``) is from the
        fp32 one on the first checked batch (see :func:`output_deviation`); None until then."""
        return self.teacher_provider.runtime.deviation

    @property
    def teacher_cache(self):
        """The teacher provider's :class:`~.teacher_cache.TeacherCache` (None without one)."""
        return self.teacher_provider.cache

    @property
    def distillation_active(self) -> bool:
        """False once every loss scale is 0 (e.g. after ``StopDistillationHook``)."""
        return any(self.loss_scales[name] != 0 for name in self.distill_losses)

    # ------------------------------------------------------------------ the step
    def loss(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]]) -> dict:
        """Teacher, student, stages, distillation losses (see :meth:`distill_step`).

        Returns:
            dict[str, Tensor]: ``student.<name>`` task losses and ``distill.<name>`` losses.
        """
        return self.distill_step(inputs, data_samples).losses

    def distill_step(self, inputs: Tensor,
                     data_samples: Optional[List[BaseDataElement]]) -> StepResult:
        """One distillation step on a preprocessed batch.

        Args:
            inputs (Tensor): shape (N, C, H, W), the student's preprocessed batch.
            data_samples (list, optional): Its data samples.

        Returns:
            StepResult: The losses, the step's records and whether it distilled.
        """
        losses: Dict[str, Tensor] = {}
        records = StepRecords(teacher={}, student={}, stages={})
        distill = self.distillation_active
        # 1. The teacher's records (computed, or read from the teacher cache).
        if distill and len(self.teacher_recorders):
            records.teacher.update(self.teacher_provider(inputs, data_samples))
        # 2. The student: task losses, and its records.
        try:
            with self.student_recorders.recording():
                if self.calculate_student_loss:
                    student_losses = self.student(inputs, data_samples, mode='loss')
                    losses.update({f'student.{k}': v for k, v in student_losses.items()})
                else:
                    self.student(inputs, data_samples, mode='tensor')
            records.student.update(self.student_recorders.buffers())
        finally:
            self.student_recorders.reset()  # recorded tensors must not outlive the step
        used_connectors: set = set()
        distilled = False
        if distill:
            fetched: Dict[tuple, Any] = {}  # a record mapped to several places is fetched once
            # 3. Stages: work that needs a model.
            self._run_stages(inputs, data_samples, records, fetched)
            # 4. The distillation losses, from tensors only.
            distill_losses = self._distill_losses(inputs, records, fetched, used_connectors)
            kept = self._finite_or_skipped(distill_losses, used_connectors)
            distilled = bool(kept) or not distill_losses
            losses.update(kept)
        self._touch_unused_connectors(losses, used_connectors)
        return StepResult(losses, records, distilled)

    def _run_stages(self, inputs: Tensor, data_samples: Optional[list], records: StepRecords,
                    fetched: Dict[tuple, Any]) -> None:
        """Run ``distill_stages`` in order, each adding its records to ``records.stages``; in
        fp32 under ``--amp``, as the losses."""
        if not self.distill_stages:
            return
        step = StepInputs(_to_fp32(inputs), data_samples, self.student, self.teacher_provider)
        with torch.autocast(device_type=_device_type(inputs), enabled=False):
            for name, stage in self.distill_stages.items():
                mapping = self.stage_forward_mappings.get(name, {})
                kwargs = {arg: _to_fp32(self._fetch(spec, records, fetched))
                          for arg, spec in mapping.items()}
                records.stages[name] = stage(step, **kwargs)

    def _finite_or_skipped(self, distilled: Dict[str, Tensor], used_connectors: set
                           ) -> Dict[str, Tensor]:
        """The distillation losses if all are finite; otherwise an error naming the non-finite
        ones, or (``skip_nonfinite=True``) none of them, with a warning."""
        tensors = [(k, v) for k, v in distilled.items() if isinstance(v, Tensor)]
        if not tensors or bool(torch.stack([torch.isfinite(v.detach()).all()
                                            for _, v in tensors]).all()):
            return distilled
        bad = {k: v.detach().float().flatten()[:4].tolist() for k, v in tensors
               if not bool(torch.isfinite(v.detach()).all())}
        if not self.skip_nonfinite:
            raise FloatingPointError(
                f'distillation loss {", ".join(bad)} is not finite at this step ({bad}). '
                'Usual causes: a learning rate or loss_weight too high, a teacher or student '
                'map that overflows (fp16), a loss input out of its domain. Lower them, or set '
                'skip_nonfinite=True on the distiller to drop a step\'s distillation losses '
                'when this happens (the student still trains on its task losses).')
        self.nonfinite_steps += 1
        print_log(f'distillation loss {", ".join(bad)} is not finite ({bad}): this step\'s '
                  f'distillation losses are skipped (skip_nonfinite=True; '
                  f'{self.nonfinite_steps} step(s) so far).', logger='current', level=30)
        used_connectors.clear()  # their parameters get a zero gradient instead
        return {}

    def _touch_unused_connectors(self, losses: Dict[str, Tensor], used: set) -> None:
        """Give connectors that no loss used in this step a zero gradient.

        Under DDP every trainable parameter must get a gradient each step (unless
        ``find_unused_parameters=True``, which costs a graph traversal per step). A connector is
        unused when its loss is switched off by a schedule or after ``StopDistillationHook``.
        """
        unused = [p for name, c in self.connectors.items() if name not in used
                  for p in c.parameters() if p.requires_grad]
        if not unused:
            return
        zero = sum(p.sum() for p in unused) * 0.0
        key = next((k for k, v in losses.items() if 'loss' in k and isinstance(v, Tensor)), None)
        if key is None:
            losses['distill.loss_unused_connectors'] = zero
        else:
            losses[key] = losses[key] + zero

    def _distill_losses(self, inputs: Tensor, records: StepRecords, fetched: Dict[tuple, Any],
                        used_connectors: set) -> Dict[str, Tensor]:
        """Every distillation loss on its mapped records, scaled by its ``loss_scales``."""
        losses: Dict[str, Tensor] = {}
        for name, loss_module in self.distill_losses.items():
            scale = self.loss_scales[name]
            if scale == 0:
                continue
            mapping = self.loss_forward_mappings.get(name, {})
            kwargs = {arg: _to_fp32(self._fetch(spec, records, fetched))
                      for arg, spec in mapping.items()}
            used_connectors.update(spec.get('connector') for spec in mapping.values())
            with torch.autocast(device_type=_device_type(inputs), enabled=False):
                value = loss_module(**kwargs)
            if isinstance(value, dict):
                for key, item in value.items():
                    losses[f'distill.{name}.{key}'] = item * scale
            else:
                losses[f'distill.{name}'] = value * scale
        return losses

    def _fetch(self, spec: dict, records: StepRecords, fetched: Dict[tuple, Any]) -> Any:
        """The value a mapping names: a stage's record, or recorded tensors (through their
        connector)."""
        if 'from_stage' in spec:
            return records.stages[spec['from_stage']][spec['output']]
        names = spec['recorder']
        record_idx, data_idx = spec.get('record_idx'), spec.get('data_idx')
        key = (spec['from_student'], tuple(names) if isinstance(names, list) else names,
               _hashable(record_idx), _hashable(data_idx), spec.get('connector'),
               json.dumps(spec.get('connector_kwargs'), sort_keys=True))
        if key not in fetched:
            side, recorders = ((records.student, self.student_recorders) if spec['from_student']
                               else (records.teacher, self.teacher_recorders))

            def pick(name: str, i: int = 0) -> Any:
                return select_record(side[name], _entry(record_idx, i), _entry(data_idx, i),
                                     recorders.describe(name))

            # A list of names gives a list of tensors, e.g. one per stage, for ReviewKD.
            data = ([pick(n, i) for i, n in enumerate(names)]
                    if isinstance(names, (list, tuple)) else pick(names))
            if spec.get('connector') is not None:
                kwargs = {arg: self._fetch(sub_spec, records, fetched)
                          for arg, sub_spec in (spec.get('connector_kwargs') or {}).items()}
                data = self.connectors[spec['connector']](data, **kwargs)
            fetched[key] = data
        return fetched[key]


def _entry(index: Any, i: int) -> Any:
    """The ``record_idx`` / ``data_idx`` of the ``i``-th recorder of a list mapping: one value
    for all, or one per recorder."""
    return index[i] if isinstance(index, (list, tuple)) else index


def _hashable(index: Any) -> Any:
    return tuple(index) if isinstance(index, list) else index


def _device_type(inputs: Any) -> str:
    return inputs.device.type if isinstance(inputs, Tensor) else 'cpu'

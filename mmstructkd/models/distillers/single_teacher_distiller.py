"""The single-teacher distiller: one frozen teacher, one student, configurable losses."""
import copy
import inspect
import json
from typing import Any, Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from mmstructkd.models.recorders import RecorderManager
from mmstructkd.registry import MODELS, build_own
from mmstructkd.utils import build_model_from_spec, load_teacher_checkpoint
from mmstructkd.utils.config_utils import apply_num_classes, set_num_classes
from .partial_forward import PartialForward
from .teacher_cache import Buffers, TeacherCache, weights_digest
from .teacher_inputs import TeacherInputAdapter
from .teacher_runtime import TeacherRuntime

#: Loss arguments with these names are filled in by the distiller when no mapping names them:
#: the batch's ground truth and images, the images in the teacher's normalisation, and the
#: models themselves (for losses that run the frozen teacher on inputs of their own, or use
#: the student's assigner, as classifier-to-detector distillation does).
AUTO_ARGS = ('data_samples', 'inputs', 'teacher_inputs', 'student', 'teacher')
#: Keys a mapping of a loss argument to a recorded tensor may have.
MAPPING_KEYS = {'from_student', 'recorder', 'record_idx', 'data_idx', 'connector',
                'connector_kwargs'}


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

    One training step: the student's data preprocessor prepares the batch (teacher and student
    see the same tensor); the teacher runs in eval mode under ``no_grad``, only as far as its
    recorders need, optionally cheaper (``teacher_runtime``: bf16/fp16 autocast, channels_last,
    ``torch.compile``); the student runs ``mode='loss'`` with its recorders on; every distillation
    loss gets its arguments from ``loss_forward_mappings`` (recorded tensors, optionally through
    a connector, and ``data_samples`` / ``inputs`` when its ``forward`` asks for them).
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
            one per backbone stage). ``connector_kwargs=dict(arg=<mapping>)`` passes the
            connector further recorded tensors by keyword (e.g. the teacher's stages, whose
            sizes ``ReviewKDConnector(output_size='teacher')`` takes).
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
        self._teacher_forward = PartialForward(
            self.teacher, self.teacher_recorders, enabled=teacher_forward == 'auto')
        self.teacher_runtime = TeacherRuntime.from_config(
            self.teacher, self.teacher_recorders, teacher_runtime)
        if self.teacher_runtime.compiles and teacher_forward == 'auto':
            # Checked with torch 2.14: Dynamo cannot trace the exception PartialForward raises
            # from its stop hook and falls back to eager for the whole teacher forward, so the
            # compile would cost its time and speed up nothing.
            raise ValueError(
                'teacher_runtime.compile needs teacher_forward="full": the early stop of '
                'teacher_forward="auto" raises an exception from a forward hook, on which '
                'torch.compile falls back to running the whole teacher eagerly. Set '
                'teacher_forward="full" to compile the full forward, or compile=False to keep '
                'stopping the eager teacher after its last recorder.')

        self.teacher_cache = self._build_teacher_cache(
            teacher_cache, teacher=teacher, teacher_recorders=teacher_recorders,
            teacher_mode=teacher_mode, teacher_runtime=teacher_runtime)

        self.connectors = nn.ModuleDict(
            {name: build_own(MODELS, cfg) for name, cfg in (connectors or {}).items()})
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
        self._check_mappings()
        #: Runtime multiplier of each distillation loss, set by DistillLossWeightHook.
        self.loss_scales: Dict[str, float] = {name: 1.0 for name in self.distill_losses}

    def _build_teacher_cache(self, cfg: Optional[dict], **fingerprint: Any
                             ) -> Optional[TeacherCache]:
        if not cfg:
            return None
        cfg = dict(cfg)
        if 'dir' not in cfg:
            raise ValueError("teacher_cache needs dir=<cache folder>, e.g. "
                             "dict(dir='work_dirs/teacher_cache')")
        if getattr(self.student.data_preprocessor, 'batch_augments', None) is not None:
            raise ValueError(
                'teacher_cache cannot be used with batch augments (the student\'s '
                'data_preprocessor.batch_augments): they mix or change samples after the '
                'dataset, so a cached teacher output would belong to another input.')
        if not isinstance(fingerprint['teacher'], dict):  # a built module: its class
            fingerprint['teacher'] = type(fingerprint['teacher']).__name__
        fingerprint['teacher_recorders'] = {
            name: repr(rec) for name, rec in self.teacher_recorders.recorders.items()}
        fingerprint['recorders'] = sorted(self.teacher_recorders.recorders)
        fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=repr))
        return TeacherCache(fingerprint=fingerprint, weights_fn=lambda: weights_digest(
            self.teacher), **cfg)

    # ------------------------------------------------------------------ set-up checks
    def _check_mappings(self) -> None:
        self._auto_args: Dict[str, List[str]] = {}
        extra = sorted(set(self.loss_forward_mappings) - set(self.distill_losses))
        if extra:
            raise ValueError(f'loss_forward_mappings name losses that are not in distill_losses: '
                             f'{extra}; defined losses: {sorted(self.distill_losses)}')
        for loss_name, loss in self.distill_losses.items():
            mapping = self.loss_forward_mappings.get(loss_name, {})
            params = inspect.signature(loss.forward).parameters
            accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
            for arg, spec in mapping.items():
                where = f'loss_forward_mappings["{loss_name}"]["{arg}"]'
                if arg not in params and not accepts_any:
                    raise ValueError(f'{where}: {type(loss).__name__}.forward has no argument '
                                     f'"{arg}"; its arguments are {list(params)}.')
                self._check_mapping(where, spec)
            missing = [name for name, p in params.items()
                       if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                              p.KEYWORD_ONLY)
                       and name not in mapping and name not in AUTO_ARGS]
            if missing:
                raise ValueError(f'loss "{loss_name}" ({type(loss).__name__}) needs arguments '
                                 f'{missing} that loss_forward_mappings["{loss_name}"] does not '
                                 'map to a recorder.')
            # data_samples / inputs are passed when forward names them and no mapping does.
            self._auto_args[loss_name] = [a for a in AUTO_ARGS if a in params and a not in mapping]

    def _check_mapping(self, where: str, spec: Any) -> None:
        if not isinstance(spec, dict) or 'recorder' not in spec or 'from_student' not in spec:
            raise ValueError(f'{where} must be dict(from_student=True|False, recorder=NAME, '
                             f'...), got {spec!r}')
        unknown = set(spec) - MAPPING_KEYS
        if unknown:
            raise ValueError(f'{where} has unknown keys {sorted(unknown)}; allowed: '
                             f'{sorted(MAPPING_KEYS)}')
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
                self._check_mapping(f'{where}["connector_kwargs"]["{arg}"]', sub_spec)

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
        return self.teacher_runtime.deviation

    @property
    def distillation_active(self) -> bool:
        """False once every loss scale is 0 (e.g. after ``StopDistillationHook``)."""
        return any(self.loss_scales[name] != 0 for name in self.distill_losses)

    # ------------------------------------------------------------------ the step
    def loss(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]]) -> dict:
        """Teacher forward, student loss forward, distillation losses.

        Returns:
            dict[str, Tensor]: ``student.<name>`` task losses and ``distill.<name>`` losses.
        """
        losses: Dict[str, Tensor] = {}
        distill = self.distillation_active
        try:
            if distill and len(self.teacher_recorders):
                if self.teacher_cache is None:
                    self._run_teacher(inputs, data_samples)
                else:
                    self.teacher_recorders.set_buffers(
                        self.teacher_cache.fetch(self._run_teacher, inputs, data_samples))
            with self.student_recorders.recording():
                if self.calculate_student_loss:
                    student_losses = self.student(inputs, data_samples, mode='loss')
                    losses.update({f'student.{k}': v for k, v in student_losses.items()})
                else:
                    self.student(inputs, data_samples, mode='tensor')
            used_connectors = set()
            if distill:
                distilled = self._distill_losses(inputs, data_samples, used_connectors)
                losses.update(self._finite_or_skipped(distilled, used_connectors))
            self._touch_unused_connectors(losses, used_connectors)
        finally:
            # Recorded tensors must not outlive the step (memory, stale data).
            self.teacher_recorders.reset()
            self.student_recorders.reset()
        return losses

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
        if hasattr(self, '_critic_batch'):  # the adversarial critic's inputs of this step
            self._critic_batch = None
        return {}

    def _run_teacher(self, inputs: Tensor, data_samples: Any) -> Buffers:
        """Run the teacher on ``inputs`` (the student's batch) and return its recorder buffers
        (they also stay in the recorders)."""
        # no_grad, not inference_mode: tensors made under inference_mode cannot be saved for
        # backward, and losses such as F.mse_loss(student, teacher) (HCLLoss) save their teacher
        # argument ("Inference tensors cannot be saved for backward").
        with self.teacher_recorders.recording(), torch.no_grad():
            teacher_inputs = self.teacher_input_adapter(inputs)
            self.teacher_runtime.run(
                lambda model, x: self._teacher_forward(
                    lambda: model(x, data_samples, mode=self.teacher_mode)),
                teacher_inputs)
        return self.teacher_recorders.buffers()

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

    def _distill_losses(self, inputs: Tensor, data_samples: Any,
                        used_connectors: set) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        cache: Dict[tuple, Any] = {}  # a tensor mapped to several losses is fetched once
        device_type = inputs.device.type if isinstance(inputs, Tensor) else 'cpu'
        auto = dict(data_samples=data_samples, inputs=_to_fp32(inputs),  # once per step
                    student=self.student, teacher=self.teacher)
        if any('teacher_inputs' in args for args in self._auto_args.values()):
            with torch.no_grad():
                auto['teacher_inputs'] = _to_fp32(self.teacher_input_adapter(inputs))
        for name, loss_module in self.distill_losses.items():
            scale = self.loss_scales[name]
            if scale == 0:
                continue
            mapping = self.loss_forward_mappings.get(name, {})
            kwargs = {arg: _to_fp32(self._fetch(spec, cache)) for arg, spec in mapping.items()}
            used_connectors.update(spec.get('connector') for spec in mapping.values())
            kwargs.update({arg: auto[arg] for arg in self._auto_args[name]})
            with torch.autocast(device_type=device_type, enabled=False):
                value = loss_module(**kwargs)
            if isinstance(value, dict):
                for key, item in value.items():
                    losses[f'distill.{name}.{key}'] = item * scale
            else:
                losses[f'distill.{name}'] = value * scale
        return losses

    def _fetch(self, spec: dict, cache: Dict[tuple, Any]) -> Any:
        names = spec['recorder']
        key = (spec['from_student'], tuple(names) if isinstance(names, list) else names,
               spec.get('record_idx'), spec.get('data_idx'), spec.get('connector'),
               json.dumps(spec.get('connector_kwargs'), sort_keys=True))
        if key not in cache:
            recorders = self.student_recorders if spec['from_student'] \
                else self.teacher_recorders
            if isinstance(names, (list, tuple)):  # e.g. one tensor per stage, for ReviewKD
                data = [recorders.get(n, spec.get('record_idx'), spec.get('data_idx'))
                        for n in names]
            else:
                data = recorders.get(names, spec.get('record_idx'), spec.get('data_idx'))
            if spec.get('connector') is not None:
                kwargs = {arg: self._fetch(sub_spec, cache)
                          for arg, sub_spec in (spec.get('connector_kwargs') or {}).items()}
                data = self.connectors[spec['connector']](data, **kwargs)
            cache[key] = data
        return cache[key]

"""The teacher side of a distillation step, in one place.

Given the preprocessed batch, :class:`TeacherProvider` returns the teacher's records
(recorder name -> what it recorded). Inside, one straight pipeline:

1. **input adapter**: the student's batch in the teacher's normalisation
   (:class:`~.teacher_inputs.TeacherInputAdapter`);
2. **runtime**: precision, channels-last, compile (:class:`~.teacher_runtime.TeacherRuntime`);
3. **forward** under ``no_grad`` with the teacher's recorders on, stopped once its records are
   complete (:class:`~.partial_forward.PartialForward`); the records are copied out and the
   recorders emptied;
4. **cache** (optional, :class:`~.teacher_cache.TeacherCache`): cached samples are read, the
   others computed by steps 1-3 and written.

The deviation check of a cheap runtime reruns step 3 with the plain fp32 teacher; the feature
probe of box crops (:meth:`TeacherProvider.probe`) runs the same runtime. Nothing outside this
class touches the teacher's recorders.
"""
import json
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmstructkd.models.ops.feature_probe import probe_layers
from mmstructkd.models.recorders.recorder_manager import RecorderManager
from .partial_forward import PartialForward
from .teacher_cache import TeacherCache, weights_digest
from .teacher_inputs import TeacherInputAdapter
from .teacher_runtime import TeacherRuntime

#: The teacher's records of one batch: recorder name -> the items recorded in one forward.
Records = Dict[str, List[Any]]


class TeacherProvider:
    """Runs the frozen teacher for the distiller and returns its records.

    Holds no modules of its own (the teacher and the input adapter are the distiller's
    submodules, so checkpoints keep their keys).

    Args:
        teacher (nn.Module): The frozen teacher, in eval mode.
        recorders (RecorderManager): The teacher's recorders, attached to it.
        input_adapter (TeacherInputAdapter): Student normalisation -> teacher normalisation.
        mode (str): The ``mode`` of the teacher's forward (``'tensor'``).
        stop_early (bool): Stop the forward once the records are complete
            (``teacher_forward='auto'``).
        runtime (dict, optional): ``teacher_runtime`` (see :class:`TeacherRuntime`).
        cache (dict, optional): ``teacher_cache`` (see :class:`TeacherCache`); its fingerprint
            also holds ``fingerprint``.
        fingerprint (dict, optional): What the cached records depend on besides the teacher's
            weights and the dataset (the teacher spec, runtime, mode).
    """

    def __init__(self, teacher: nn.Module, recorders: RecorderManager,
                 input_adapter: TeacherInputAdapter, mode: str = 'tensor',
                 stop_early: bool = True, runtime: Optional[dict] = None,
                 cache: Optional[dict] = None, fingerprint: Optional[dict] = None) -> None:
        self.teacher = teacher
        self.recorders = recorders
        self.input_adapter = input_adapter
        self.mode = mode
        self.partial_forward = PartialForward(teacher, recorders, enabled=stop_early)
        self.runtime = TeacherRuntime.from_config(teacher, runtime)
        if self.runtime.compiles and stop_early:
            # Checked with torch 2.14: Dynamo cannot trace the exception the early stop raises
            # from its hook and falls back to eager for the whole teacher forward, so the
            # compile would cost its time and speed up nothing.
            raise ValueError(
                'teacher_runtime.compile needs teacher_forward="full": the early stop of '
                'teacher_forward="auto" raises an exception from a forward hook, on which '
                'torch.compile falls back to running the whole teacher eagerly. Set '
                'teacher_forward="full" to compile the full forward, or compile=False to keep '
                'stopping the eager teacher after its last recorder.')
        self.cache = self._build_cache(cache, dict(fingerprint or {}))

    def _build_cache(self, cfg: Optional[dict], fingerprint: dict) -> Optional[TeacherCache]:
        if not cfg:
            return None
        cfg = dict(cfg)
        if 'dir' not in cfg:
            raise ValueError("teacher_cache needs dir=<cache folder>, e.g. "
                             "dict(dir='work_dirs/teacher_cache')")
        if not isinstance(fingerprint.get('teacher', {}), dict):
            fingerprint['teacher'] = type(fingerprint['teacher']).__name__  # a built module
        fingerprint['teacher_recorders'] = {
            name: repr(rec) for name, rec in self.recorders.recorders.items()}
        fingerprint['recorders'] = sorted(self.recorders.recorders)
        fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=repr))
        return TeacherCache(fingerprint=fingerprint,
                            weights_fn=lambda: weights_digest(self.teacher), **cfg)

    # ------------------------------------------------------------------ records
    def __call__(self, inputs: Tensor, data_samples: Optional[list]) -> Records:
        """The teacher's records for a batch.

        Args:
            inputs (Tensor): shape (N, C, H, W), the batch in the student's normalisation.
            data_samples (list, optional): Their data samples (passed to the teacher's forward;
                their cache keys with ``teacher_cache``).

        Returns:
            dict[str, list]: Recorder name -> recorded items, as one teacher forward on the
            whole batch records them (after the cache's compression with ``teacher_cache``).
        """
        if self.cache is None:
            return self.compute(inputs, data_samples)
        entries = self.cache.read(inputs, data_samples)
        missing = [i for i, entry in enumerate(entries) if entry is None]
        cached = [i for i, entry in enumerate(entries) if entry is not None]
        if missing:
            samples = [data_samples[i] for i in missing]
            fresh = self.compute(inputs[missing], samples)
            for i, entry in zip(missing, self.cache.write(samples, fresh)):
                entries[i] = entry
        if cached and self.cache.verify_pending:
            fresh = self.compute(inputs[cached], [data_samples[i] for i in cached])
            self.cache.check(fresh, [entries[i] for i in cached], inputs.device)
        return self.cache.collate(entries, inputs.device)

    def compute(self, inputs: Tensor, data_samples: Optional[list]) -> Records:
        """Run the teacher on ``inputs`` (student normalisation) and return its records."""
        # no_grad, not inference_mode: tensors made under inference_mode cannot be saved for
        # backward, and losses such as F.mse_loss(student, teacher) (HCLLoss) save their teacher
        # argument ("Inference tensors cannot be saved for backward").
        with torch.no_grad():
            x = self.input_adapter(inputs)
            with self.runtime.running(x) as (model, x_run):
                records = self._record(model, x_run, data_samples)
            if self.runtime.deviation_pending:
                with self.runtime.reference(x) as (model, x_ref):
                    reference = self._record(model, x_ref, data_samples)
                self.runtime.report_deviation(records, reference)
        return records

    def _record(self, model: Any, x: Tensor, data_samples: Optional[list]) -> Records:
        """One forward of ``model`` with the recorders on; their records, recorders emptied."""
        try:
            with self.recorders.recording():
                self.partial_forward(lambda: model(x, data_samples, mode=self.mode))
            return self.recorders.buffers()
        finally:
            self.recorders.reset()

    # ------------------------------------------------------------------ other inputs
    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        """``inputs`` (student normalisation, (N, C, H, W)) in the teacher's normalisation."""
        return self.input_adapter(inputs)

    def probe(self, inputs: Tensor, layers: Sequence[str], grad: bool = False,
              stop_early: bool = True) -> Dict[str, Tensor]:
        """Outputs of the teacher's ``layers`` on images of its own (e.g. box crops).

        Runs in the configured runtime (precision, channels-last), stops after the last layer
        (unless ``stop_early=False``, which also returns the logits as ``'__output__'``).

        Args:
            inputs (Tensor): shape (P, C, H, W), already in the teacher's normalisation.
            layers (Sequence[str]): Dotted module paths, or ``'input'`` for ``inputs`` itself.
            grad (bool): Keep the graph: the frozen teacher passes gradients to ``inputs``
                (e.g. to the boxes of differentiable crops). Defaults to False.
            stop_early (bool): See above. Defaults to True.

        Returns:
            dict[str, Tensor]: Layer name -> output (see :func:`probe_layers`).
        """
        # The eager teacher even when compiled: the probe stops it from a hook, which a
        # compiled forward cannot (see teacher_forward).
        with torch.set_grad_enabled(grad), self.runtime.running(inputs) as (_, x):
            return probe_layers(self.teacher, x, layers,
                                lambda m, batch: m(batch, mode='tensor'),
                                stop_early=stop_early)

"""Make the frozen teacher's forward cheaper: precision, denormals, memory format, compile.

The teacher never trains, so its forward can run in bf16/fp16 autocast, with CPU denormals
flushed to zero, in channels-last layout or compiled, while the student, the losses and the
optimizer stay exactly as they were. Whatever can change the teacher's outputs measurably is
off by default (flushing denormals is on: it only touches values below 1.2e-38); the first step
that uses such a setting also runs the plain fp32 teacher once and logs how far its outputs
moved (``SingleTeacherDistiller.teacher_deviation`` keeps the numbers).
"""
import ctypes
import inspect
import re
import sys
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

#: ``teacher_runtime`` keys and their defaults.
DEFAULTS = dict(precision='inherit', flush_denormal=False, channels_last=False, compile=False,
                check_deviation=True)
#: Allowed values of ``precision``.
PRECISIONS = {'inherit': None, 'fp32': torch.float32, 'bf16': torch.bfloat16,
              'fp16': torch.float16}


# ---------------------------------------------------------------------- denormals (CPU)
def flushed_thread_fraction() -> float:
    """Share of the intra-op CPU work that currently flushes denormals to zero.

    FTZ/DAZ is a per-thread CPU mode, so the probe multiplies a tensor of denormals big enough
    to be split over all of ``torch.get_num_threads()`` threads and counts zeros: 1.0 means
    every thread flushes, 0.5 with two threads means only one does.

    Returns:
        float: In [0, 1].
    """
    # 32768 is ATen's grain size of element-wise ops: 4 chunks per thread reach every thread.
    n = 32768 * 4 * max(1, torch.get_num_threads())
    # The int32 bit pattern 1 is the smallest fp32 denormal (1.4e-45); integer fills are not
    # touched by FTZ, so the probe does not depend on the mode of the thread that builds it.
    x = torch.ones(n, dtype=torch.int32).view(torch.float32)
    flushed = (x * 1.0).view(torch.int32) == 0  # bit-exact: no float comparison under DAZ
    return flushed.float().mean().item()


_OMP_LIB: Dict[str, Any] = {}
_OMP_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _openmp_library() -> Optional[ctypes.CDLL]:
    """The OpenMP runtime torch loaded (libgomp, or libiomp5/libomp with their GOMP entry
    points), found through ``/proc/self/maps``; None where that is not possible."""
    if 'lib' in _OMP_LIB:
        return _OMP_LIB['lib']
    lib = None
    if sys.platform.startswith('linux') and 'OpenMP' in torch.__config__.parallel_info():
        try:
            with open('/proc/self/maps') as f:
                paths = sorted(set(re.findall(r'/\S*/lib(?:gomp|iomp5|omp)\S*\.so\S*', f.read())))
        except OSError:
            paths = []
        for path in paths:
            try:
                candidate = ctypes.CDLL(path)
                candidate.GOMP_parallel.argtypes = [_OMP_CALLBACK, ctypes.c_void_p,
                                                    ctypes.c_uint, ctypes.c_uint]
                candidate.GOMP_parallel.restype = None
            except (OSError, AttributeError):
                continue
            lib = candidate
            break
    _OMP_LIB['lib'] = lib
    return lib


def set_flush_denormal_all_threads(enabled: bool) -> bool:
    """``torch.set_flush_denormal(enabled)`` on the calling thread and every OpenMP thread.

    ``torch.set_flush_denormal`` sets the mode of the calling thread only; OpenMP workers that
    already exist keep theirs (with 2 threads half of a tensor stays unflushed, see
    ``tests/test_models/test_teacher_precision.py``). The call is therefore repeated inside
    one OpenMP parallel region of ``torch.get_num_threads()`` threads, which libgomp runs on
    the same pooled threads as ATen's own parallel regions.

    Args:
        enabled (bool): Flush (True) or keep (False) denormals.

    Returns:
        bool: False if the CPU cannot flush denormals (no SSE3); True otherwise, even where
        the worker threads could not be reached (:func:`flushed_thread_fraction` tells).
    """
    if not torch.set_flush_denormal(enabled):
        return False
    lib = _openmp_library()
    threads = torch.get_num_threads()
    if lib is not None and threads > 1:
        # ctypes releases the GIL around the call; each thread takes it to run the callback.
        callback = _OMP_CALLBACK(lambda _: torch.set_flush_denormal(enabled))
        lib.GOMP_parallel(callback, None, threads, 0)
    return True


# ---------------------------------------------------------------------- deviation
def _tensors(item: Any) -> List[Tensor]:
    """The floating tensors in a recorded item (a tensor, or nested lists/tuples/dicts)."""
    if isinstance(item, Tensor):
        return [item] if item.is_floating_point() else []
    if isinstance(item, (list, tuple)):
        return [t for x in item for t in _tensors(x)]
    if isinstance(item, dict):
        return [t for x in item.values() for t in _tensors(x)]
    return []


def output_deviation(outputs: List[Any], reference: List[Any]) -> Dict[str, Optional[float]]:
    """How far the recorded items of one recorder are from their fp32 reference.

    Args:
        outputs (list): The recorder's buffer after the cheap teacher forward.
        reference (list): Its buffer after the plain fp32 forward on the same inputs.

    Returns:
        dict: ``max_abs_diff`` (over all recorded tensors, computed in fp32), ``max_abs_ref``
        (largest ``|reference|``), ``rel_diff`` (their ratio) and ``argmax_agreement`` (share of
        positions where ``argmax`` over dim 1 agrees, over every tensor of shape (N, C, ...) with
        C > 1, e.g. (N, C, H, W) score maps or (N, C) logits; None if there is none).
    """
    outs = [t for item in outputs for t in _tensors(item)]
    refs = [t for item in reference for t in _tensors(item)]
    if len(outs) != len(refs) or any(a.shape != b.shape for a, b in zip(outs, refs)):
        raise RuntimeError('The teacher recorded different tensors in its fp32 reference run '
                           f'({[tuple(t.shape) for t in refs]}) than in the cheap run '
                           f'({[tuple(t.shape) for t in outs]}).')
    max_diff, max_ref, agree, positions = 0.0, 0.0, 0, 0
    for out, ref in zip(outs, refs):
        if out.numel() == 0:
            continue
        ref = ref.float()
        max_diff = max(max_diff, (out.float() - ref).abs().max().item())
        max_ref = max(max_ref, ref.abs().max().item())
        if out.dim() >= 2 and out.shape[1] > 1:
            same = out.argmax(1) == ref.argmax(1)
            agree += int(same.sum().item())
            positions += same.numel()
    return dict(max_abs_diff=max_diff, max_abs_ref=max_ref,
                rel_diff=max_diff / max_ref if max_ref > 0 else 0.0,
                argmax_agreement=agree / positions if positions else None)


# ---------------------------------------------------------------------- the runtime
def _device_of(inputs: Any) -> torch.device:
    """The device of the teacher's batch (a tensor, or a list of them); CPU if it has none."""
    tensors = [t for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])
               if isinstance(t, Tensor)]
    return tensors[0].device if tensors else torch.device('cpu')


class TeacherRuntime:
    """Runs the frozen teacher's forward cheaply; built from ``teacher_runtime=dict(...)``.

    Only the teacher's forward is affected: the student's forward and backward, the
    distillation losses (which get fp32 inputs, see ``_to_fp32`` in the distiller) and the
    optimizer run as without it.

    Args:
        teacher (nn.Module): The frozen teacher.
        precision (str): ``'inherit'`` (default): no autocast of its own, so fp32, or the AMP
            dtype when the whole step runs under ``--amp``, exactly as without this class.
            ``'fp32'``: autocast off for the teacher, fp32 even under ``--amp``. ``'bf16'``:
            bfloat16 autocast (CPU, and GPUs with bf16 support). ``'fp16'``: float16 autocast
            on GPUs; refused on the CPU, where fp16 matmuls are emulated on most chips (use
            ``'bf16'``). Changes the teacher's outputs, so it is opt-in.
        flush_denormal (bool): On the CPU, flush denormal floats (``|x| < 1.2e-38`` in fp32) to
            zero during the teacher's forward, on every intra-op thread (a CPU computes with
            denormals 10-100x slower). It changes the teacher's outputs only where a value is
            below 1.2e-38, far under anything a logit, feature or loss can tell; it is still
            opt-in (default False) because reaching the OpenMP worker threads takes a call
            into libgomp through ctypes (``set_flush_denormal_all_threads``), which a build
            with another OpenMP runtime cannot honour (a warning says how many threads it
            reached). Turn it on for CPU runs whose teacher sees denormals (measure: the
            teacher's forward time with and without). It is a per-thread CPU mode that
            would otherwise hold for the whole process: it is switched back off after the
            teacher's forward, so the student, the losses (where ``log(p)`` of a probability
            flushed to 0 would be ``-inf``) and backward keep IEEE behaviour. If the process
            already flushes on every thread, it is left alone. No effect on GPUs.
        channels_last (bool): Convert the teacher's 4-D weights and its (N, C, H, W) input to
            ``torch.channels_last``, which can speed up convolutions (tensor cores, oneDNN),
            mostly in bf16/fp16; measure before keeping it. Changes the summation order, so it
            is opt-in.
        compile (bool | dict): Run the teacher through ``torch.compile`` (a dict gives its
            keyword arguments, e.g. ``dict(mode='max-autotune')``). Needs
            ``teacher_forward='full'`` in the distiller (see there). Opt-in.
        check_deviation (bool): The first step whose teacher forward differs from the plain
            fp32 one (autocast active, channels_last or compile) runs the eager fp32 teacher
            once more on the same inputs and logs, per recorder, the max abs difference and
            the argmax agreement over dim 1 (:func:`output_deviation`); :attr:`deviation` keeps
            them. Does not change results, so it is on by default.
    """

    def __init__(self, teacher: nn.Module, precision: str = 'inherit', flush_denormal: bool = False,
                 channels_last: bool = False, compile: Union[bool, dict] = False,
                 check_deviation: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'teacher_runtime.precision must be one of {list(PRECISIONS)}, '
                             f'got {precision!r}')
        for key, value in (('flush_denormal', flush_denormal), ('channels_last', channels_last),
                           ('check_deviation', check_deviation)):
            if not isinstance(value, bool):
                raise TypeError(f'teacher_runtime.{key} must be True or False, got {value!r}')
        self.teacher = teacher
        self.precision = precision
        self.flush_denormal = flush_denormal
        self.channels_last = channels_last
        self.check_deviation = check_deviation
        self.compile_kwargs = self._compile_kwargs(compile)
        #: Per recorder: ``output_deviation`` of the first step that was checked, else None.
        self.deviation: Optional[Dict[str, Dict[str, Optional[float]]]] = None
        self._model: Optional[Callable[..., Any]] = None  # the teacher, or its compiled self
        self._checked = False
        #: The autocast dtype of the last :meth:`running` block (None: no autocast).
        self.autocast_dtype: Optional[torch.dtype] = None
        self._ftz: Optional[str] = None  # None: not set up; 'off', 'toggle', 'keep_on', 'already'

    @classmethod
    def from_config(cls, teacher: nn.Module, cfg: Optional[dict]) -> 'TeacherRuntime':
        """Build from the distiller's ``teacher_runtime`` dict, naming unknown keys."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(DEFAULTS))
        if unknown:
            raise ValueError(f'teacher_runtime has unknown keys {unknown}; allowed: '
                             f'{sorted(DEFAULTS)}')
        return cls(teacher, **cfg)

    @staticmethod
    def _compile_kwargs(compile: Union[bool, dict]) -> Optional[dict]:
        if compile is False or compile is None:
            return None
        if compile is True:
            return {}
        if not isinstance(compile, dict):
            raise TypeError('teacher_runtime.compile must be True, False or a dict of '
                            f'torch.compile arguments, got {compile!r}')
        allowed = set(inspect.signature(torch.compile).parameters) - {'model'}
        unknown = sorted(set(compile) - allowed)
        if unknown:
            raise ValueError(f'teacher_runtime.compile has unknown torch.compile arguments '
                             f'{unknown}; allowed: {sorted(allowed)}')
        return dict(compile)

    @property
    def compiles(self) -> bool:
        """Whether the teacher runs through ``torch.compile``."""
        return self.compile_kwargs is not None

    # ------------------------------------------------------------------ set-up
    def _check_device(self, device: torch.device) -> None:
        if self.precision == 'fp16' and device.type == 'cpu':
            raise ValueError(
                "teacher_runtime.precision='fp16' needs a GPU: on the CPU fp16 matmuls are "
                "emulated on most chips and slower than fp32. Use precision='bf16' on the CPU.")
        if self.precision == 'bf16' and device.type == 'cuda' and \
                not torch.cuda.is_bf16_supported():
            raise ValueError(f"teacher_runtime.precision='bf16': {torch.cuda.get_device_name()} "
                             "has no bf16 support; use precision='fp16'.")

    def _setup(self) -> None:
        """Once, at the first teacher forward (after ``init_weights`` loaded the weights)."""
        if self.channels_last:
            # Only 4-D tensors change; later load_state_dict copies keep this layout.
            self.teacher.to(memory_format=torch.channels_last)
        self._model = self.teacher
        if self.compiles:
            # Kept off the module tree: the distiller's state_dict keys stay unprefixed.
            self._model = torch.compile(self.teacher, **self.compile_kwargs)

    def _setup_flush(self) -> None:
        before = flushed_thread_fraction()
        if before == 1.0:
            self._ftz = 'already'
            print_log('teacher_runtime: denormals are already flushed to zero on every CPU '
                      'thread of this process; left as is.', logger='current')
            return
        if not set_flush_denormal_all_threads(True):
            self._ftz = 'off'
            print_log('teacher_runtime: this CPU cannot flush denormals (no SSE3); '
                      'flush_denormal has no effect.', logger='current', level=30)
            return
        after = flushed_thread_fraction()
        # Someone else switched it on for some threads: do not switch theirs off again.
        self._ftz = 'toggle' if before == 0.0 else 'keep_on'
        if self._ftz == 'toggle':
            set_flush_denormal_all_threads(False)
        threads = torch.get_num_threads()
        msg = (f'teacher_runtime: the teacher forward flushes denormals to zero on '
               f'{after:.0%} of the work of {threads} CPU thread(s)')
        if after < 1.0:
            print_log(msg + ': the OpenMP worker threads could not be reached, only the '
                      'calling thread flushes.', logger='current', level=30)
        else:
            print_log(msg + '.', logger='current')

    @contextmanager
    def _flushing(self, device: torch.device) -> Iterator[None]:
        if not self.flush_denormal or device.type != 'cpu':
            yield
            return
        if self._ftz is None:
            self._setup_flush()
        if self._ftz not in ('toggle', 'keep_on'):
            yield
            return
        set_flush_denormal_all_threads(True)
        try:
            yield
        finally:
            if self._ftz == 'toggle':
                set_flush_denormal_all_threads(False)

    def _autocast(self, device: torch.device):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return nullcontext()
        if dtype is torch.float32:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=dtype)

    # ------------------------------------------------------------------ the forward
    @contextmanager
    def running(self, inputs: Any) -> Iterator[Tuple[Callable[..., Any], Any]]:
        """The configured runtime around one teacher forward.

        Use as ``with runtime.running(x) as (model, x): model(x, ...)``, with gradients off
        unless the caller needs them through the frozen teacher.

        Args:
            inputs (Tensor): The teacher's batch, shape (N, C, H, W), in the teacher's
                normalisation.

        Yields:
            tuple: The model to call (the teacher or its compiled version) and the inputs to
            call it with (channels-last when configured).
        """
        device = _device_of(inputs)
        self._check_device(device)
        if self._model is None:
            self._setup()
        x = inputs
        if self.channels_last and isinstance(x, Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(device), self._flushing(device):
            self.autocast_dtype = (torch.get_autocast_dtype(device.type)
                                   if torch.is_autocast_enabled(device.type) else None)
            yield self._model, x

    @contextmanager
    def reference(self, inputs: Any) -> Iterator[Tuple[nn.Module, Any]]:
        """The plain teacher as it runs without this class: eager, fp32 even under ``--amp``,
        denormals kept; for the deviation check."""
        with torch.autocast(_device_of(inputs).type, enabled=False):
            yield self.teacher, inputs

    @property
    def deviation_pending(self) -> bool:
        """Whether the last :meth:`running` forward differs from the fp32 one and has not been
        compared with it yet (``check_deviation``)."""
        differs = self.autocast_dtype is not None or self.channels_last or self.compiles
        return self.check_deviation and differs and not self._checked

    def report_deviation(self, cheap: Dict[str, List[Any]],
                         reference: Dict[str, List[Any]]) -> None:
        """Keep and log how far the cheap forward's records are from the fp32 reference's.

        Args:
            cheap (dict): Recorder name -> recorded items of the cheap forward.
            reference (dict): The same of the reference forward on the same inputs.
        """
        self._checked = True
        self.deviation = {name: output_deviation(cheap[name], reference[name])
                          for name in cheap}
        dtype = self.autocast_dtype
        what = [f'{str(dtype).replace("torch.", "")} autocast'] if dtype else []
        what += ['channels_last'] * self.channels_last + ['torch.compile'] * self.compiles
        print_log(f'teacher_runtime: teacher outputs with {" + ".join(what)} vs. the eager fp32 '
                  'teacher on the first batch (measured once):', logger='current')
        for name, dev in self.deviation.items():
            agreement = dev['argmax_agreement']
            print_log(f'teacher_runtime:   recorder "{name}": max abs diff '
                      f'{dev["max_abs_diff"]:.3g} ({dev["rel_diff"]:.2%} of max |fp32| '
                      f'{dev["max_abs_ref"]:.3g})'
                      + ('' if agreement is None else
                         f', argmax agreement over dim 1 {agreement:.2%}'),
                      logger='current')

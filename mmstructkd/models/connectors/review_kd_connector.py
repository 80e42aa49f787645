"""ReviewKD's review path: student stages fused deepest first by ABF modules."""
from typing import List, Optional, Sequence, Tuple

from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmstructkd.registry import MODELS
from .abf import ABF

#: Where each stage's output (and the fused feature passed on) gets its spatial size.
OUTPUT_SIZES = ('teacher', 'student')


@MODELS.register_module()
class ReviewKDConnector(BaseModule):
    """Maps the student's stage features to the teacher's, each informed by the deeper ones.

    "Distilling Knowledge via Knowledge Review" (Chen et al., CVPR 2021): the deepest student
    stage goes through an :class:`ABF` without fusion; every shallower stage is fused with the
    result of the stage below it, so stage ``i``'s output has reviewed stages ``i..n-1``. Each
    output is compared with the teacher's stage ``i`` (``HCLLoss``). Only the student and these
    modules train.

    Stage features are given shallow to deep, as backbones and FPNs return them. A 2-D feature
    (N, C) (e.g. the pooled embedding, which the paper adds as the last "stage") is treated as
    a 1x1 map.

    Where a student stage is smaller (or larger) than the teacher's, ``output_size`` decides
    what happens:

    - ``'teacher'`` (the official code, CIFAR-100/model/reviewkd.py ``out_shapes``): each ABF
      resizes its fused feature (nearest) to the teacher stage's size *before* its 3x3 conv,
      and passes it on at that size; the next stage resizes it to its own size for the fusion.
      Needs the teacher's stages at forward time (only their sizes are read): in a distiller
      config, ``connector_kwargs=dict(teacher_feats=dict(from_student=False,
      recorder=<the teacher's stages>))`` in the mapping that names this connector.
    - ``'student'``: every output keeps its student stage's size (``HCLLoss`` then resizes it
      bilinearly to the teacher's). A different network and loss where sizes differ.

    Where every student stage has its teacher stage's size the two are the same computation.

    Args:
        in_channels (Sequence[int]): Channels of each student stage, shallow to deep.
        out_channels (Sequence[int]): Channels of each teacher stage, same order.
        mid_channels (int): Width of the fusion, shared by all stages because each stage mixes
            in the fused feature of the stage below it. Defaults to 256 (the official code: 512
            for the ImageNet ResNet-18 student, 256 for MobileNet and FPN levels,
            ``min(512, in_channels[-1])`` on CIFAR-100).
        output_size (str): ``'teacher'`` or ``'student'``, see above. Defaults to
            ``'student'``; the ReviewKD configs in ``configs/reviewkd/`` set ``'teacher'``.
        norm_cfg (dict): Norm of the ABF convs. Defaults to ``dict(type='BN')``.
        upsample_mode (str): How a deeper residual, and with ``output_size='teacher'`` the
            fused feature, are resized. Defaults to ``'nearest'`` (the official code).
        channels_last (bool): Run the ABFs in channels-last memory (same values, faster; see
            :class:`ABF`). Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int],
                 mid_channels: int = 256, output_size: str = 'student',
                 norm_cfg: dict = dict(type='BN'), upsample_mode: str = 'nearest',
                 channels_last: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if len(in_channels) != len(out_channels) or not in_channels:
            raise ValueError(f'ReviewKDConnector: in_channels {list(in_channels)} and '
                             f'out_channels {list(out_channels)} must list the same (non-zero) '
                             'number of stages, student and teacher paired stage by stage.')
        if output_size not in OUTPUT_SIZES:
            raise ValueError(f'ReviewKDConnector: output_size must be one of {OUTPUT_SIZES} '
                             f"('teacher': the official code), got {output_size!r}.")
        self.output_size = output_size
        num_stages = len(in_channels)
        self.abfs = ModuleList([
            ABF(c_in, mid_channels, c_out, fuse=i < num_stages - 1, norm_cfg=norm_cfg,
                upsample_mode=upsample_mode, channels_last=channels_last)
            for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))])

    def forward(self, feats: Sequence[Tensor],
                teacher_feats: Optional[Sequence[Tensor]] = None) -> List[Tensor]:
        """Review the stages, deepest first.

        Args:
            feats (Sequence[Tensor]): Student stages, shallow to deep, each of shape
                (N, in_channels[i], H_i, W_i) or (N, in_channels[i]).
            teacher_feats (Sequence[Tensor], optional): Teacher stages, same order, each of
                shape (N, C'_i, H'_i, W'_i) or (N, C'_i); only their sizes are read. Required
                with ``output_size='teacher'``, ignored with ``'student'``.

        Returns:
            list[Tensor]: One per stage, same order, shape (N, out_channels[i], H'_i, W'_i)
            with ``output_size='teacher'``, (N, out_channels[i], H_i, W_i) with
            ``'student'``.
        """
        feats = self._as_stages(feats, 'student stages')
        out_sizes = self._out_sizes(teacher_feats)
        outputs: List[Optional[Tensor]] = [None] * len(feats)
        residual = None
        for i in reversed(range(len(feats))):
            outputs[i], residual = self.abfs[i](feats[i], residual, out_sizes[i])
        return outputs

    def _as_stages(self, feats: Sequence[Tensor], what: str) -> List[Tensor]:
        """Check the stage count and make (N, C) features (N, C, 1, 1) maps."""
        if isinstance(feats, Tensor) or len(feats) != len(self.abfs):
            got = 'one tensor' if isinstance(feats, Tensor) else f'{len(feats)} tensors'
            raise ValueError(f'ReviewKDConnector expects {len(self.abfs)} {what} (a list of '
                             f'recorders or a tuple output such as a neck), got {got}.')
        return [f[:, :, None, None] if f.dim() == 2 else f for f in feats]

    def _out_sizes(self, teacher_feats: Optional[Sequence[Tensor]]
                   ) -> List[Optional[Tuple[int, int]]]:
        """Per stage, the (H, W) the ABF brings its output to (None: the student's)."""
        if self.output_size == 'student':
            return [None] * len(self.abfs)
        if teacher_feats is None:
            raise ValueError(
                "ReviewKDConnector(output_size='teacher') needs the teacher's stages, whose "
                'sizes are the output sizes: in the loss mapping that names this connector, '
                'add connector_kwargs=dict(teacher_feats=dict(from_student=False, '
                "recorder=<the teacher's stages>)) (or call connector(student_feats, "
                "teacher_feats)); output_size='student' keeps the student's sizes instead.")
        sizes = []
        for i, t in enumerate(self._as_stages(teacher_feats, 'teacher stages (teacher_feats)')):
            if t.dim() != 4:
                raise ValueError(f'ReviewKDConnector: teacher stage {i} has shape '
                                 f'{tuple(t.shape)}; expected (N, C, H, W) or (N, C).')
            sizes.append((int(t.shape[2]), int(t.shape[3])))
        return sizes

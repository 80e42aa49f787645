"""The compression report: per unit what was chosen and what it costs, and the accuracies."""
from typing import List, Optional


def describe(spec: dict) -> str:
    """A short human description of a unit config, e.g. ``'InvertedResidual x3, expand 6'``."""
    kind = spec['type'].split('.')[-1]
    if kind == 'InvertedResidualStage':
        ratio = spec['expand_ratio']
        name = 'DWSeparable' if ratio == 1 else 'InvertedResidual'
        extra = '' if ratio == 1 else f', expand {ratio:g}'
        return f'{name} x{spec["num_blocks"]}{extra} ({spec["in_channels"]}->' \
               f'{spec["out_channels"]}, s{spec["stride"]})'
    if kind == 'ResidualStage':
        extra = f', expansion {spec["expansion"]}' if spec['block'] == 'Bottleneck' else ''
        return f'{spec["block"]} x{spec["num_blocks"]}{extra} ({spec["in_channels"]}->' \
               f'{spec["out_channels"]}, s{spec["stride"]})'
    if kind == 'LowRankPointwise':
        return f'LowRank 1x1 ({spec["in_channels"]}->{spec["rank"]}->{spec["out_channels"]})'
    if kind == 'ConvModule':
        k = spec.get('kernel_size', 1)
        return f'Conv {k}x{k} ({spec["in_channels"]}->{spec["out_channels"]})'
    return kind


def _m(x: float) -> str:
    return f'{x / 1e6:.3f}M' if x >= 1e5 else f'{x / 1e3:.2f}K'


def to_markdown(report: dict) -> str:
    """The report as markdown: the per-unit table, the totals and the accuracies."""
    lines = [f'# Block-wise compression of {report["teacher_config"]}', '',
             f'Budget: {report["budget"]["kind"]} <= {report["budget"]["absolute"]:.6g} '
             f'({report["budget"]["given"]}); input {tuple(report["input_shape"])}.', '',
             '| unit | teacher block | chosen block | FLOPs before | FLOPs after | '
             'params before | params after | block-wise error |',
             '|---|---|---|---:|---:|---:|---:|---:|']
    for row in report['units']:
        lines.append(f'| {row["unit"]} | {row["teacher_block"]} | {row["chosen_block"]} | '
                     f'{_m(row["flops_before"])} | {_m(row["flops_after"])} | '
                     f'{_m(row["params_before"])} | {_m(row["params_after"])} | '
                     f'{row["error"]:.4f} |')
    t, s = report['teacher'], report['student']
    lines += ['', '| model | FLOPs | params | top-1 |', '|---|---:|---:|---:|']
    rows: List[tuple] = [('teacher', t), ('student (block-wise + KD fine-tune)', s)]
    if report.get('student_without_distillation') is not None:
        rows.append(('same student without distillation', report['student_without_distillation']))
    for name, entry in rows:
        top1 = entry.get('top1')
        lines.append(f'| {name} | {_m(entry.get("flops", s["flops"]))} | '
                     f'{_m(entry.get("params", s["params"]))} | '
                     f'{"-" if top1 is None else f"{top1:.2f}"} |')
    lines += ['', f'FLOPs ratio (student / teacher): {report["flops_ratio"]:.3f}; params ratio: '
              f'{report["params_ratio"]:.3f}.']
    return '\n'.join(lines) + '\n'


def top1_of(metrics: Optional[dict]) -> Optional[float]:
    """``accuracy/top1`` of a metrics dict (None without one)."""
    if not metrics:
        return None
    return float(metrics.get('accuracy/top1', next(iter(metrics.values()))))

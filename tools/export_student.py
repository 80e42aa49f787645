"""Export the student of a distiller checkpoint as a plain checkpoint of the stock model.

    python tools/export_student.py work_dirs/x/iter_80000.pth student.pth [--config CONFIG]

The output has ``state_dict`` keyed as in the student's stock model (load it with the stock
mmseg/mmdet/mmpretrain config and ``strict=True``) and ``meta``. With ``--config`` (the
student's stock config, or the distiller config) the export is first checked by loading it
strictly into the student built from that config (a distiller config: its ``model.student``
with the distiller's ``num_classes``; either config resolved as ``tools/train.py`` resolves it,
``docs/own_data.md``), and ``meta['student_config']`` holds that student's model config as data
(dicts, lists, strings, numbers). The config text a training checkpoint stores
(``meta['cfg']`` / ``meta['config']``) is not copied: an exported file carries no code. The
checkpoint is read through mmstructkd's safe loader (``weights_only=True``) and the output is
written atomically.
"""
import argparse
import os.path as osp
from typing import Any

from mmengine.config import Config, ConfigDict

from mmstructkd.utils import (atomic_save, build_model_from_spec, extract_student_state_dict,
                              model_cfg_from_spec, safe_load)
from mmstructkd.utils.config_loading import load_config
from mmstructkd.utils.config_utils import apply_num_classes
from mmstructkd.utils.safe_load import encode_state

#: Meta keys a training checkpoint has that are not copied into the export.
DROPPED_META = ('cfg', 'config')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export the student of a distiller checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint (e.g. work_dirs/x/iter_N.pth)')
    parser.add_argument('out', help='output file for the student checkpoint')
    parser.add_argument('--config', help='the student\'s stock config or the distiller config: '
                        'verify a strict load into that student')
    return parser.parse_args(argv)


def as_data(value: Any) -> Any:
    """A config value as plain data (dicts, lists, tuples, str, numbers, None); anything else
    (a class or function of a lazy-import config) as its repr."""
    if isinstance(value, (ConfigDict, dict)):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(as_data(v) for v in value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return repr(value)


def student_spec_of(cfg: Config) -> dict:
    """The student's model config: ``model.student`` of a distiller config (with the
    distiller's ``num_classes`` applied, as the distiller builds it), else ``model`` (the
    student's stock config)."""
    model = cfg.model
    if 'student' not in model:
        return model
    if 'teacher' not in model:
        raise KeyError(f'{cfg.filename}: model has a "student" but no "teacher"; give the '
                       'student\'s stock config or the distiller config.')
    return apply_num_classes(model.student, model.get('num_classes'), 'student')


def export_student(checkpoint: str, out: str, config: str = None) -> dict:
    """Write the student's weights of ``checkpoint`` to ``out`` and return them."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint "{checkpoint}" does not exist.')
    ckpt = safe_load(checkpoint, map_location='cpu', role='distiller checkpoint')
    if not isinstance(ckpt, dict):
        raise TypeError(f'distiller checkpoint "{checkpoint}" holds a {type(ckpt).__name__}, '
                        'not a dict.')
    state_dict = extract_student_state_dict(ckpt.get('state_dict', ckpt))
    meta = {k: v for k, v in (ckpt.get('meta') or {}).items() if k not in DROPPED_META}
    if config is not None:
        cfg = load_config(config)
        student_spec = student_spec_of(cfg)
        if cfg.get('default_scope') and isinstance(student_spec, dict):
            student_spec.setdefault('_scope_', cfg.default_scope)
        student = build_model_from_spec(student_spec, 'student')
        student.load_state_dict(state_dict, strict=True)
        if isinstance(student_spec, dict):
            meta['student_config'] = as_data(model_cfg_from_spec(student_spec, 'student'))
    meta['exported_from'] = osp.abspath(checkpoint)
    atomic_save(dict(meta=encode_state(meta), state_dict=state_dict), out)
    return state_dict


def main(argv=None):
    args = parse_args(argv)
    state_dict = export_student(args.checkpoint, args.out, args.config)
    print(f'Exported {len(state_dict)} student tensors to {args.out}')


if __name__ == '__main__':
    main()

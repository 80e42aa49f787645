"""Export the student of a distiller checkpoint as a plain checkpoint of the stock model.

    python tools/export_student.py work_dirs/x/iter_80000.pth student.pth [--config CONFIG]

The output has ``state_dict`` keyed as in the student's stock model (load it with the stock
mmseg/mmdet/mmpretrain config and ``strict=True``) and ``meta``. With ``--config`` (the
distiller config) the export is first checked by loading it strictly into the student built
from that config.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

import mmstructkd  # noqa: F401  (allows mmengine checkpoints under weights_only=True)
from mmstructkd.utils import build_model_from_spec, extract_student_state_dict


def parse_args():
    parser = argparse.ArgumentParser(description='Export the student of a distiller checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint (e.g. work_dirs/x/iter_N.pth)')
    parser.add_argument('out', help='output file for the student checkpoint')
    parser.add_argument('--config', help='distiller config: verify a strict load into its student')
    return parser.parse_args()


def export_student(checkpoint: str, out: str, config: str = None) -> dict:
    """Write the student's weights of ``checkpoint`` to ``out`` and return them."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint "{checkpoint}" does not exist.')
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state_dict = extract_student_state_dict(ckpt.get('state_dict', ckpt))
    if config is not None:
        cfg = Config.fromfile(config)
        student_spec = cfg.model.get('student')
        if student_spec is None:
            raise KeyError(f'{config}: model has no "student"; is it a distiller config?')
        if cfg.get('default_scope') and isinstance(student_spec, dict):
            student_spec.setdefault('_scope_', cfg.default_scope)
        student = build_model_from_spec(student_spec, 'student')
        student.load_state_dict(state_dict, strict=True)
    meta = dict(ckpt.get('meta', {}))
    meta['exported_from'] = osp.abspath(checkpoint)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state_dict), out)
    return state_dict


def main():
    args = parse_args()
    state_dict = export_student(args.checkpoint, args.out, args.config)
    print(f'Exported {len(state_dict)} student tensors to {args.out}')


if __name__ == '__main__':
    main()

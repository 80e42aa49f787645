"""Writing the student: a stock-buildable config, its checkpoint, and the KD fine-tune config.

Configs are written flat (``Config.dump`` of the merged config, no ``_base_``), so they do not
depend on where the teacher's config came from. Paths inside the output folder are written as
``{{fileDirname}}/...``: the folder can be moved as a whole.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from torch import Tensor

#: Keys of the teacher config that make no sense in the student's.
DROPPED_KEYS = ('compression', 'work_dir', 'load_from', 'resume', 'launcher')


def _with_mmstructkd_import(cfg: Config) -> None:
    imports = dict(cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False))
    names = list(imports.get('imports') or [])
    if 'mmstructkd' not in names:
        names.append('mmstructkd')
    imports['imports'] = names
    imports.setdefault('allow_failed_imports', False)
    cfg.custom_imports = imports


def student_config(teacher_cfg: Config, backbone_cfg: dict) -> Config:
    """The teacher's config with the student backbone (neck, head, data, schedule unchanged)
    and ``custom_imports=dict(imports=['mmstructkd'])``."""
    cfg = Config(copy.deepcopy(teacher_cfg.to_dict()))
    for key in DROPPED_KEYS:
        cfg.pop(key, None)
    cfg.model.backbone = copy.deepcopy(backbone_cfg)
    cfg.model.pop('init_cfg', None)  # e.g. a Pretrained teacher init: not the student's
    _with_mmstructkd_import(cfg)
    return cfg


def kd_config(student_cfg: Config, teacher_cfg_path: str, teacher_ckpt: Optional[str],
              student_init: Optional[str], tau: float = 4.0, loss_weight: float = 1.0,
              logits: str = 'head.fc', hint_units: Optional[List[str]] = None,
              hint_weight: float = 1.0) -> Config:
    """A ``SingleTeacherDistiller`` config that fine-tunes the student end to end.

    Args:
        student_cfg (Config): From :func:`student_config`.
        teacher_cfg_path (str): The teacher's config file (may use ``{{fileDirname}}``).
        teacher_ckpt (str, optional): The teacher's weights.
        student_init (str, optional): Checkpoint the student starts from (the block-wise
            trained one), loaded by a ``Pretrained`` init_cfg of the student.
        tau (float): KD temperature. loss_weight (float): KD loss weight.
        logits (str): The module whose output are the logits, in both models.
        hint_units (list[str], optional): Backbone units whose outputs are also matched by
            ``FeatureMSELoss`` (the student keeps every unit's output shape, so no connector).
        hint_weight (float): Weight of each hint loss.
    """
    cfg = Config(copy.deepcopy(student_cfg.to_dict()))
    student = copy.deepcopy(cfg.model.to_dict())
    if student_init is not None:
        student['init_cfg'] = dict(type='Pretrained', checkpoint=student_init)
    recorders = dict(logits=dict(type='ModuleOutputs', source=logits))
    losses = dict(loss_kd=dict(type='KDLoss', tau=tau, loss_weight=loss_weight))
    mappings = dict(loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                 preds_T=dict(from_student=False, recorder='logits')))
    for unit in hint_units or []:
        recorders[unit] = dict(type='ModuleOutputs', source=f'backbone.{unit}')
        losses[f'loss_hint_{unit}'] = dict(type='FeatureMSELoss', loss_weight=hint_weight)
        mappings[f'loss_hint_{unit}'] = dict(
            s_feature=dict(from_student=True, recorder=unit),
            t_feature=dict(from_student=False, recorder=unit))
    model = dict(type='mmstructkd.SingleTeacherDistiller', student=student,
                 teacher=dict(cfg_path=teacher_cfg_path), teacher_ckpt=teacher_ckpt,
                 student_recorders=recorders, teacher_recorders=copy.deepcopy(recorders),
                 distill_losses=losses, loss_forward_mappings=mappings)
    if cfg.get('data_preprocessor') is not None:  # mmpretrain keeps it at the top level
        model['data_preprocessor'] = copy.deepcopy(cfg.data_preprocessor)
    cfg.model = model
    hooks = [h for h in cfg.get('custom_hooks', []) or []
             if 'StudentCheckpointHook' not in h.get('type', '')]
    cfg.custom_hooks = hooks + [dict(type='mmstructkd.StudentCheckpointHook')]
    return cfg


def student_state_dict(teacher_state: Dict[str, Tensor], replaced_units: List[str],
                       unit_states: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The teacher's weights, minus those of ``replaced_units``, plus ``unit_states`` (keys
    ``backbone.<unit>.<param>``)."""
    prefixes = tuple(f'backbone.{u}.' for u in replaced_units)
    state = {k: v.clone() for k, v in teacher_state.items() if not k.startswith(prefixes)}
    state.update({k: v.clone() for k, v in unit_states.items()})
    return state


def save_checkpoint(state: Dict[str, Tensor], path: str, meta: Optional[dict] = None) -> str:
    """Save ``dict(state_dict=..., meta=...)`` as mmengine does; return ``path``."""
    torch.save(dict(state_dict=state, meta=meta or {}), path)
    return path


def dump(cfg: Config, path: str) -> str:
    """Write ``cfg`` as a Python config file; return ``path``."""
    cfg.dump(path)
    return osp.abspath(path)

# ReviewKD on BCCD (the CPU benchmark, benchmarks/reviewkd_bccd.py): the 128-wide RetinaNet
# teacher into the slim 64-wide student (configs/baselines/), five FPN levels reviewed from P7
# down to P3, HCL weight 1.0 (the paper's RetinaNet setting). The connector (new ABFs, random
# init) learns at 10x the student's lr: the paper's COCO schedules give it ~90k iterations, this
# one 624, in which at 1x it fits the teacher no better than zeros would (configs/reviewkd/
# README.md, "BCCD"). The loss weight and the student's lr stay the paper's.
# On another dataset (docs/own_data.md): a child config sets data_root, metainfo, num_classes
# and teacher_ckpt at the top level; student and teacher follow (nothing under model).
_base_ = ['../baselines/retinanet_mobilenetv2-w0.5_fpn64-slim_1xb8-24e_bccd-320x240.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
teacher_ckpt = None  # the teacher's trained checkpoint (the benchmark sets it)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/../baselines/'
                          'retinanet_mobilenetv2_fpn128-gn_1xb8-24e_bccd-320x240.py'),
    teacher_ckpt=teacher_ckpt,
    num_classes=_base_.num_classes,  # of student and teacher
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[64] * 5,
                                out_channels=[128] * 5, mid_channels=64,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder='fpn', connector='review',
                         connector_kwargs=dict(teacher_feats=dict(
                             from_student=False, recorder='fpn'))),
            preds_T=dict(from_student=False, recorder='fpn'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'connectors': dict(lr_mult=10.0)}))

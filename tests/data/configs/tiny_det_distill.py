# Distil tiny_det_teacher.py into tiny_det_student.py: feature MSE on every FPN level.
_base_ = ['./tiny_det_student.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/tiny_det_teacher.py'),
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    connectors=dict(fpn_adapter=dict(type='ConvConnector', in_channels=16, out_channels=32)),
    distill_losses=dict(loss_fpn=dict(type='FeatureMSELoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_fpn=dict(
            s_feature=dict(from_student=True, recorder='fpn', data_idx=0,
                           connector='fpn_adapter'),
            t_feature=dict(from_student=False, recorder='fpn', data_idx=0))))

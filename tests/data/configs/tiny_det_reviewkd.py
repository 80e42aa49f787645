# ReviewKD of tiny_det_teacher.py into tiny_det_student.py on the FPN levels (16 -> 32 wide).
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
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[16, 16, 16],
                                out_channels=[32, 32, 32], mid_channels=16)),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder='fpn', connector='review'),
            preds_T=dict(from_student=False, recorder='fpn'))))

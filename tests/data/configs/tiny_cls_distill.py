# Distil tiny_cls_teacher.py into tiny_cls_student.py with logit KD.
_base_ = ['./tiny_cls_student.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/tiny_cls_teacher.py'),
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))

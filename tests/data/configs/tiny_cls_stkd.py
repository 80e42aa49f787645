# STKD of tiny_cls_teacher.py into tiny_cls_student.py: the student's data preprocessor mixes
# each training batch once (STKDMixup) and teacher and student both see the virtual batch.
_base_ = ['./tiny_cls_student.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=dict(
        _base_.model,
        data_preprocessor=dict(_base_.model.data_preprocessor,
                               batch_augments=dict(augments=[dict(type='STKDMixup',
                                                                  alpha=1.0)]))),
    teacher=dict(cfg_path='{{fileDirname}}/tiny_cls_teacher.py'),
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_stkd=dict(type='STKDLoss', tau=4.0)),
    loss_forward_mappings=dict(
        loss_stkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'),
            virtual=dict(from_stage='mix', output='virtual'))),
    # Which samples STKDMixup mixed, read off the batch's data samples.
    distill_stages=dict(mix=dict(type='STKDMixRecord')))

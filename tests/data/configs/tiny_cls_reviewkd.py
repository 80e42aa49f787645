# ReviewKD of tiny_cls_teacher.py (16-32-64-128) into tiny_cls_student.py (8-16-32-64): the four
# backbone stages, reviewed deepest first, compared by HCL.
_base_ = ['./tiny_cls_student.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
stages = ['layer1', 'layer2', 'layer3', 'layer4']
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/tiny_cls_teacher.py'),
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders={s: dict(type='ModuleOutputs', source=f'backbone.{s}') for s in stages},
    teacher_recorders={s: dict(type='ModuleOutputs', source=f'backbone.{s}') for s in stages},
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[8, 16, 32, 64],
                                out_channels=[16, 32, 64, 128], mid_channels=32)),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, connector='review'),
            preds_T=dict(from_student=False, recorder=stages))))

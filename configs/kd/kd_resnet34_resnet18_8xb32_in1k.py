# Logit KD (Hinton et al.): ResNet-34 (teacher, 73.62 top-1 released checkpoint) into
# ResNet-18 on ImageNet. Everything but the model comes from the student's stock config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=3.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

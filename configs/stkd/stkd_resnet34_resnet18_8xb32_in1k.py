# STKD (arXiv 2103.10047): ResNet-34 (teacher, 73.62 top-1 released checkpoint) into ResNet-18
# on ImageNet, both on the same mixup virtual batch. Everything but the model comes from the
# student's stock config; the KD settings (tau, weight) are those of
# configs/kd/kd_resnet34_resnet18_8xb32_in1k.py, so the two compare; alpha = 0.2 is
# mmpretrain's ImageNet Mixup setting. Untuned.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    # The student's (top-level) preprocessor plus the mixing: one mixup per step, whose output
    # the distiller gives to teacher and student. Set on the model, not only at the top level,
    # so that it holds wherever the model is built.
    data_preprocessor=dict(_base_.data_preprocessor,
                           batch_augments=dict(augments=[dict(type='STKDMixup', alpha=0.2)])),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_stkd=dict(type='STKDLoss', tau=1.0, virtual_weight=3.0)),
    loss_forward_mappings=dict(
        loss_stkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'),
            virtual=dict(from_stage='mix', output='virtual'))),
    # Which samples STKDMixup mixed, read off the batch's data samples.
    distill_stages=dict(mix=dict(type='STKDMixRecord')))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

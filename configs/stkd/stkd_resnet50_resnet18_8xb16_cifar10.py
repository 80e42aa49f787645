# STKD (arXiv 2103.10047) on CIFAR-10: ResNet-50 (teacher, mmpretrain's released checkpoint)
# into ResNet-18, both mmpretrain's stock CIFAR-10 configs. tau = 4, alpha = 1; untuned.
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_b16x8_cifar10_20210528-f54bfad9.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    data_preprocessor=dict(_base_.data_preprocessor,
                           batch_augments=dict(augments=[dict(type='STKDMixup', alpha=1.0)])),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar10.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_stkd=dict(type='STKDLoss', tau=4.0, virtual_weight=1.0)),
    loss_forward_mappings=dict(
        loss_stkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'),
            virtual=dict(from_stage='mix', output='virtual'))),
    # Which samples STKDMixup mixed, read off the batch's data samples.
    distill_stages=dict(mix=dict(type='STKDMixRecord')))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

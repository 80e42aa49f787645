# STKD (arXiv 2103.10047) on CIFAR-100: ResNet-50 (teacher, mmpretrain's released checkpoint)
# into a CIFAR ResNet-18. mmpretrain ships no ResNet-18 CIFAR-100 config: the student is the
# teacher's stock config with depth 18 (as its resnet18_8xb16_cifar10.py); data, schedule and
# runtime come from that config unchanged. tau = 4 as is usual for CIFAR-100 KD, alpha = 1 as
# mixup on CIFAR; untuned.
_base_ = ['mmpretrain::resnet/resnet50_8xb16_cifar100.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_b16x8_cifar100_20210528-67b58a1b.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=dict(_base_.model, backbone=dict(_base_.model.backbone, depth=18),
                 head=dict(_base_.model.head, in_channels=512)),
    data_preprocessor=dict(_base_.data_preprocessor,
                           batch_augments=dict(augments=[dict(type='STKDMixup', alpha=1.0)])),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar100.py'),
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

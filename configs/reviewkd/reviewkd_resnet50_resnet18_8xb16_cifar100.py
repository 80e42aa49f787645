# ReviewKD, CIFAR-100-style pair: CIFAR ResNet-50 (teacher, 79.90 top-1 released checkpoint) into
# CIFAR ResNet-18 (mmpretrain's ResNet_CIFAR: 3x3 stem, no max-pool), mmpretrain's CIFAR-100
# recipe (200 epochs). Stages 256..2048 (teacher) vs 64..512 (student), plus the embeddings.
# HCL weight 1.0 with the paper's 20-epoch linear warm-up of the weight. ABFs 512 wide: the
# official CIFAR-100 code's min(512, the student's last width). Stage tensors as the official
# CIFAR-100 code takes them: the student's stage outputs (after their ReLU), the teacher's before
# their last ReLU (`preact=True`): the sum the stage's last Bottleneck feeds its ReLU (called
# three times per block; the third call, record_idx=-1, is on the sum; clone=True keeps it
# before the in-place ReLU overwrites it).
_base_ = ['mmpretrain::resnet/resnet50_8xb16_cifar100.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_b16x8_cifar100_20210528-67b58a1b.pth'  # noqa: E501
stages = ['layer1', 'layer2', 'layer3', 'layer4', 'embedding']
recorders = {s: dict(type='ModuleOutputs', source=f'backbone.{s}') for s in stages[:4]}
recorders['embedding'] = dict(type='ModuleOutputs', source='neck.gap')  # (N, C, 1, 1)
teacher_recorders = {s: dict(type='ModuleInputs', source=f'backbone.{s}.{b}.relu', clone=True)
                     for s, b in zip(stages[:4], [2, 3, 5, 2])}  # ResNet-50: 3-4-6-3 blocks
teacher_recorders['embedding'] = recorders['embedding']  # pooled after the ReLU, as official
teacher_stages = dict(from_student=False, recorder=stages, record_idx=[-1, -1, -1, -1, None],
                      data_idx=[0, 0, 0, 0, None])
student = dict(_base_.model)
student['backbone'] = dict(_base_.model.backbone, depth=18)
student['head'] = dict(_base_.model.head, in_channels=512)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=student,
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar100.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=recorders,
    teacher_recorders=teacher_recorders,
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[64, 128, 256, 512, 512],
                                out_channels=[256, 512, 1024, 2048, 2048], mid_channels=512,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, connector='review',
                         connector_kwargs=dict(teacher_feats=teacher_stages)),
            preds_T=teacher_stages)))
custom_hooks = [
    dict(type='mmstructkd.DistillLossWeightHook', by_epoch=True, linear=True,
         schedule=dict(loss_hcl=[(0, 0.0), (20, 1.0)])),
    dict(type='mmstructkd.StudentCheckpointHook'),
]

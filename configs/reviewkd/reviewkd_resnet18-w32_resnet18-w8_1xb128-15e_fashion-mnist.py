# ReviewKD on Fashion-MNIST (the CPU benchmark, benchmarks/reviewkd_fashion_mnist.py): the
# half-width CIFAR ResNet-18 teacher into the eighth-width student (configs/baselines/), four
# stages (32..256 vs 8..64 channels) plus the embeddings, HCL weight 1.0 warmed up over the
# first epoch. The stage tensors of the official CIFAR-100 code: the student's stage outputs
# (after their ReLU), the teacher's before their last ReLU (`preact=True`), i.e. the sum the
# stage's last block feeds its ReLU (the block calls one in-place ReLU twice: the second call,
# record_idx=-1, is on the sum; clone=True keeps it before the ReLU overwrites it).
_base_ = ['../baselines/resnet18-w8_cifar_1xb128-15e_fashion-mnist.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

stages = ['layer1', 'layer2', 'layer3', 'layer4', 'embedding']
recorders = {s: dict(type='ModuleOutputs', source=f'backbone.{s}') for s in stages[:4]}
recorders['embedding'] = dict(type='ModuleOutputs', source='neck.gap')  # (N, C, 1, 1)
teacher_recorders = {s: dict(type='ModuleInputs', source=f'backbone.{s}.1.relu', clone=True)
                     for s in stages[:4]}
teacher_recorders['embedding'] = recorders['embedding']  # pooled after the ReLU, as official
teacher_stages = dict(from_student=False, recorder=stages, record_idx=[-1, -1, -1, -1, None],
                      data_idx=[0, 0, 0, 0, None])
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/../baselines/resnet18-w32_cifar_1xb128-15e_fashion-mnist.py'),  # noqa: E501
    teacher_ckpt=None,  # set to the teacher's trained checkpoint (the benchmark does)
    student_recorders=recorders,
    teacher_recorders=teacher_recorders,
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[8, 16, 32, 64, 64],
                                out_channels=[32, 64, 128, 256, 256], mid_channels=64,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, connector='review',
                         connector_kwargs=dict(teacher_feats=teacher_stages)),
            preds_T=teacher_stages)))
custom_hooks = [
    dict(type='mmstructkd.DistillLossWeightHook', by_epoch=True, linear=True,
         schedule=dict(loss_hcl=[(0, 0.0), (1, 1.0)])),
    dict(type='mmstructkd.StudentCheckpointHook'),
]

# ReviewKD: ResNet-34 (teacher, 73.62 top-1 released checkpoint) into ResNet-18 on ImageNet.
# The four backbone stages and the pooled embedding (a 1x1 "stage", as in the paper's code) are
# reviewed deepest first by ABFs (512 wide) and compared with the teacher's by HCL. Each stage
# is taken before its last ReLU, student and teacher, as the official ImageNet code does: the
# sum the stage's last block feeds its ReLU (the block calls one in-place ReLU twice: the second
# call, record_idx=-1, is on the sum; clone=True keeps it before the ReLU overwrites it).
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
stages = ['layer1', 'layer2', 'layer3', 'layer4', 'embedding']
embedding = dict(type='ModuleOutputs', source='neck.gap')  # (N, 512, 1, 1), after the ReLU
last_blocks = dict(student=[1, 1, 1, 1], teacher=[2, 3, 5, 2])  # ResNet-18: 2-2-2-2, 34: 3-4-6-3
student_recorders = {s: dict(type='ModuleInputs', source=f'backbone.{s}.{b}.relu', clone=True)
                     for s, b in zip(stages[:4], last_blocks['student'])}
student_recorders['embedding'] = embedding
teacher_recorders = {s: dict(type='ModuleInputs', source=f'backbone.{s}.{b}.relu', clone=True)
                     for s, b in zip(stages[:4], last_blocks['teacher'])}
teacher_recorders['embedding'] = embedding
pre_activation = dict(record_idx=[-1, -1, -1, -1, None], data_idx=[0, 0, 0, 0, None])
teacher_stages = dict(from_student=False, recorder=stages, **pre_activation)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=student_recorders,
    teacher_recorders=teacher_recorders,
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[64, 128, 256, 512, 512],
                                out_channels=[64, 128, 256, 512, 512], mid_channels=512,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, **pre_activation,
                         connector='review',
                         connector_kwargs=dict(teacher_feats=teacher_stages)),
            preds_T=teacher_stages)))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# ReviewKD: ResNet-34 (teacher, 73.62 top-1 released checkpoint) into ResNet-18 on ImageNet.
# The four backbone stages and the pooled embedding (a 1x1 "stage", as in the paper's code) are
# reviewed deepest first by ABFs (512 wide) and compared with the teacher's by HCL.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
stages = ['layer1', 'layer2', 'layer3', 'layer4', 'embedding']
recorders = {s: dict(type='ModuleOutputs', source=f'backbone.{s}') for s in stages[:4]}
recorders['embedding'] = dict(type='ModuleOutputs', source='neck.gap')  # (N, 512, 1, 1)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=recorders,
    teacher_recorders=recorders,
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[64, 128, 256, 512, 512],
                                out_channels=[64, 128, 256, 512, 512], mid_channels=512,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, connector='review',
                         connector_kwargs=dict(teacher_feats=dict(
                             from_student=False, recorder=stages))),
            preds_T=dict(from_student=False, recorder=stages))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# ReviewKD: ResNet-50 (teacher, 76.55 top-1 released checkpoint) into MobileNetV2 on ImageNet
# (the paper distils into MobileNet v1; mmpretrain ships v2). Student stages: the outputs of
# MobileNetV2's layers 2, 3, 5 and 7 (strides 4, 8, 16, 32: 24, 32, 96, 320 channels) and its
# 1280-wide pooled embedding; teacher: ResNet-50's four stages (256..2048) and embedding.
# ABFs 256 wide, as the official ImageNet code for its MobileNet student.
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501
stages = ['s4', 's8', 's16', 's32', 'embedding']
student_recorders = dict(
    s4=dict(type='ModuleOutputs', source='backbone.layer2'),
    s8=dict(type='ModuleOutputs', source='backbone.layer3'),
    s16=dict(type='ModuleOutputs', source='backbone.layer5'),
    s32=dict(type='ModuleOutputs', source='backbone.layer7'),
    embedding=dict(type='ModuleOutputs', source='neck.gap'))
teacher_recorders = dict(
    s4=dict(type='ModuleOutputs', source='backbone.layer1'),
    s8=dict(type='ModuleOutputs', source='backbone.layer2'),
    s16=dict(type='ModuleOutputs', source='backbone.layer3'),
    s32=dict(type='ModuleOutputs', source='backbone.layer4'),
    embedding=dict(type='ModuleOutputs', source='neck.gap'))
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=student_recorders,
    teacher_recorders=teacher_recorders,
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[24, 32, 96, 320, 1280],
                                out_channels=[256, 512, 1024, 2048, 2048], mid_channels=256,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder=stages, connector='review',
                         connector_kwargs=dict(teacher_feats=dict(
                             from_student=False, recorder=stages))),
            preds_T=dict(from_student=False, recorder=stages))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# ReviewKD: ResNet-50 (teacher, 76.55 top-1 released checkpoint) into MobileNetV2 on ImageNet
# (the paper distils into MobileNet v1; mmpretrain ships v2). Student stages: the outputs of
# MobileNetV2's layers 2, 3, 5 and 7 (strides 4, 8, 16, 32: 24, 32, 96, 320 channels) and its
# 1280-wide pooled embedding; teacher: ResNet-50's four stages (256..2048) and embedding.
# ABFs 256 wide, as the official ImageNet code for its MobileNet student. Stage tensors as the
# official ImageNet code takes them, before the stage's last ReLU: the teacher's is the sum its
# stage's last Bottleneck feeds its ReLU (called three times per block; the third call,
# record_idx=-1, is on the sum; clone=True keeps it before the in-place ReLU overwrites it);
# MobileNetV2's stages end in a linear projection (no activation), so their outputs are it.
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
teacher_recorders = dict(  # ResNet-50: 3-4-6-3 Bottlenecks
    s4=dict(type='ModuleInputs', source='backbone.layer1.2.relu', clone=True),
    s8=dict(type='ModuleInputs', source='backbone.layer2.3.relu', clone=True),
    s16=dict(type='ModuleInputs', source='backbone.layer3.5.relu', clone=True),
    s32=dict(type='ModuleInputs', source='backbone.layer4.2.relu', clone=True),
    embedding=dict(type='ModuleOutputs', source='neck.gap'))
teacher_stages = dict(from_student=False, recorder=stages, record_idx=[-1, -1, -1, -1, None],
                      data_idx=[0, 0, 0, 0, None])
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
                         connector_kwargs=dict(teacher_feats=teacher_stages)),
            preds_T=teacher_stages)))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

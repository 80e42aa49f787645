# FitNets-style feature hints on every FPN level: RetinaNet-R101 (teacher, 38.5 box AP released
# checkpoint) into RetinaNet-R50 on COCO. Both FPNs are 256 wide, so no connector is needed.
# The teacher stops after its neck: its head never runs.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'  # noqa: E501
fpn_levels = 5
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    distill_losses={
        f'loss_fpn{i}': dict(type='FeatureMSELoss', loss_weight=1.0)
        for i in range(fpn_levels)
    },
    loss_forward_mappings={
        f'loss_fpn{i}': dict(
            s_feature=dict(from_student=True, recorder='fpn', data_idx=i),
            t_feature=dict(from_student=False, recorder='fpn', data_idx=i))
        for i in range(fpn_levels)
    })
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

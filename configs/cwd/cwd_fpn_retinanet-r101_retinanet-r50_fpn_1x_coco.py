# Channel-wise distillation on FPN features: RetinaNet-R101 (teacher, 38.5 box AP released) ->
# RetinaNet-R50 (36.5 alone) on COCO, every level P3-P7 (equal widths: no connector), the
# setting of mmrazor's cwd_fpn_retina_r101_retina_r50_1x_coco (converted from the CWD authors'
# mmdetection port): tau 1, loss weight 10 per level. mmrazor's teacher is the 2x-schedule
# R101; this one is the 1x.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'  # noqa: E501
levels = 5
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    distill_losses={
        f'loss_cwd{i}': dict(type='ChannelWiseDivergence', tau=1.0, loss_weight=10.0)
        for i in range(levels)
    },
    loss_forward_mappings={
        f'loss_cwd{i}': dict(
            preds_S=dict(from_student=True, recorder='fpn', data_idx=i),
            preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
        for i in range(levels)
    })
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

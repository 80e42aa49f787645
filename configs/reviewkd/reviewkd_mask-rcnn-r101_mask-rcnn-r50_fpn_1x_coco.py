# ReviewKD for instance segmentation: Mask R-CNN R101 (teacher, 40.0 box / 36.1 mask AP
# released checkpoint) into Mask R-CNN R50 on COCO, on the five FPN levels.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_1x_coco/mask_rcnn_r101_fpn_1x_coco_20200204-1efe0ed5.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
    connectors=dict(review=dict(type='ReviewKDConnector', in_channels=[256] * 5,
                                out_channels=[256] * 5, mid_channels=256,
                                output_size='teacher')),
    distill_losses=dict(loss_hcl=dict(type='HCLLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_hcl=dict(
            preds_S=dict(from_student=True, recorder='fpn', connector='review',
                         connector_kwargs=dict(teacher_feats=dict(
                             from_student=False, recorder='fpn'))),
            preds_T=dict(from_student=False, recorder='fpn'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

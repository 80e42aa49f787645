# ReviewKD: RetinaNet R101 (teacher, 38.5 box AP released checkpoint) into RetinaNet R50 on
# COCO, on the five FPN levels (P3-P7, 256 wide), HCL weight 1.0 (the paper's code).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', pretrained=False),
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

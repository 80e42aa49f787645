# Structured KD for detection, as in the paper's FCOS experiments: FCOS-R101 (teacher, 39.1 box
# AP released) -> FCOS-R50 (36.6 alone) on COCO. Pair-wise on every FPN level, pixel-wise on
# the class score maps of every level (FCOS classifies with per-class sigmoids: binary KL).
# The head is shared by the levels, so its conv_cls runs once per level: record_idx picks one.
# Holistic distillation is optional for detection (see the segmentation configs for the
# AdversarialDistiller settings); it is left out here. The official code has no detection
# experiments: the pair-wise term takes its official segmentation form (2x2 max-pooled nodes per
# level, detached norms, lambda_pa 0.5 shared by the levels); the pixel-wise term on sigmoid
# class maps stays the paper's per-pixel mean KL.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/fcos/fcos_r101_caffe_fpn_gn-head_1x_coco/fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth'  # noqa: E501
levels = 5
pixel = {
    f'loss_pixel{i}': dict(type='PixelWiseLoss', activation='sigmoid', ignore_index=None,
                           loss_weight=10.0 / levels)
    for i in range(levels)
}
pair = {
    f'loss_pair{i}': dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                          loss_weight=0.5 / levels)
    for i in range(levels)
}
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(
        fpn=dict(type='ModuleOutputs', source='neck'),
        cls=dict(type='ModuleOutputs', source='bbox_head.conv_cls')),
    teacher_recorders=dict(
        fpn=dict(type='ModuleOutputs', source='neck'),
        cls=dict(type='ModuleOutputs', source='bbox_head.conv_cls')),
    distill_losses={**pixel, **pair},
    loss_forward_mappings={
        **{f'loss_pixel{i}': dict(
            preds_S=dict(from_student=True, recorder='cls', record_idx=i),
            preds_T=dict(from_student=False, recorder='cls', record_idx=i))
           for i in range(levels)},
        **{f'loss_pair{i}': dict(
            s_feature=dict(from_student=True, recorder='fpn', data_idx=i),
            t_feature=dict(from_student=False, recorder='fpn', data_idx=i))
           for i in range(levels)},
    })
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

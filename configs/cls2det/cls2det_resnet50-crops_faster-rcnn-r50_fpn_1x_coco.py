# Classifier-to-detector distillation into Faster R-CNN-R50-FPN (1x) on COCO from the ResNet-50
# COCO-crop classifier (resnet50_8xb32-30e_coco-crops-112x112.py), on the RoI head's positive
# RoIs of each step (its own assigner and sampler): the SSD recipe's softmax KL of their class
# scores (the teacher puts 0 on background; T = 2; normalised as SSD's) and its localization
# L1 (pixels + the ResNet-50 stem, summed, boxes clamped) of the crops of their class-specific
# predicted boxes. The released code ships no Faster R-CNN distillation; the weights are the SSD
# recipe's, not tuned for Faster R-CNN.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/resnet50_8xb32-30e_coco-crops-112x112.py',
                 pretrained=False),
    teacher_ckpt=None,  # set to the crop classifier's checkpoint (train it first)
    student_recorders=dict(
        head=dict(type='MethodInputsRecorder', source='roi_head.bbox_head.loss_and_target')),
    # The model work: the detector's positives, the box crops and the teacher's outputs.
    distill_stages=dict(
        cls2det=dict(
            type='mmstructkd.Cls2DetStage', crop_size=112, context=0.0, clamp_boxes=True,
            min_size=4,  # as the teacher's crops (coco_to_crops.py --min-size 4); released: 0
            layers=['input', 'backbone.maxpool'], max_samples=512)),
    stage_forward_mappings=dict(
        cls2det=dict(head_inputs=dict(from_student=True, recorder='head'))),
    # The comparison: tensors only.
    distill_losses=dict(
        loss_cls2det=dict(
            type='mmstructkd.Cls2DetLoss',
            recognition=dict(tau=2.0, loss_weight=0.4, teacher_target='softmax',
                             normalize='avg_factor'),
            localization=dict(pool_sizes=[4, 8], combine='input_plus_mean',
                              loss_weight=0.15))),
    loss_forward_mappings=dict(
        loss_cls2det=dict(targets=dict(from_stage='cls2det', output='targets'))),
    # The crop classifier in channels-last memory (same values up to summation order; faster
    # convolutions on oneDNN CPUs and tensor cores).
    teacher_runtime=dict(channels_last=True))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# Classifier-to-detector distillation into RetinaNet-R50-FPN (1x) on COCO from the ResNet-50
# COCO-crop classifier (resnet50_8xb32-30e_coco-crops-112x112.py). RetinaNet's sigmoid scores
# of every positive anchor get the released code's 'kl-bce' (the recipe ships no RetinaNet
# code; its loss has this option for sigmoid heads): per class, the binary KL between the
# teacher's sigmoid(t / T) and the student's sigmoid(s / T), mean over the classes, T = 2,
# normalised as SSD's; localization as in the SSD recipe (pixels + the ResNet-50 stem, summed,
# boxes clamped). The weights are the SSD recipe's, not tuned for RetinaNet. This port's
# earlier reading (softmax target, binary KL summed over classes): configs/cls2det/README.md.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/resnet50_8xb32-30e_coco-crops-112x112.py',
                 pretrained=False),
    teacher_ckpt=None,  # set to the crop classifier's checkpoint (train it first)
    student_recorders=dict(
        head=dict(type='MethodInputsRecorder', source='bbox_head.loss_by_feat')),
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
            recognition=dict(tau=2.0, loss_weight=0.4, teacher_target='sigmoid',
                             class_reduction='mean', normalize='avg_factor'),
            localization=dict(pool_sizes=[4, 8], combine='input_plus_mean',
                              loss_weight=0.15))),
    loss_forward_mappings=dict(
        loss_cls2det=dict(targets=dict(from_stage='cls2det', output='targets'))),
    # The crop classifier in channels-last memory (same values up to summation order; faster
    # convolutions on oneDNN CPUs and tensor cores).
    teacher_runtime=dict(channels_last=True))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# Classifier-to-detector distillation, the paper's released recipe (NVlabs/DICOD,
# configs_dev/ssd/ssd300_coco_cls_loc.py): SSD300-VGG16 on COCO distilled from a ResNet-50
# classifier trained on COCO object crops (resnet50_8xb32-30e_coco-crops-112x112.py), computed
# as the released code does (configs/cls2det/README.md, "Fidelity").
# Recognition KD: T = 2, weight 0.4 (x T^2), KL from the teacher's softmax (0 on background) to
# the softmax scores of SSD's positive anchors, summed over the positives and divided by
# mmdet 2's avg_factor (the batch's positives, an image without any counting 1).
# Localization KD: the 112x112 crops of each positive's predicted box and of its ground truth,
# both clamped to the image; L1 of the crop pixels (pooled 4x4) plus L1 of the teacher's stem
# (conv1-bn-relu-maxpool, 64 channels, pooled 8x8), per positive, averaged over all positives,
# weight 0.15. The student trains as the stock ssd300_coco.py.
_base_ = ['mmdet::ssd/ssd300_coco.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/resnet50_8xb32-30e_coco-crops-112x112.py',
                 pretrained=False),
    teacher_ckpt=None,  # set to the crop classifier's checkpoint (train it first)
    # SSD normalises with std 1, the teacher with ImageNet's std: the distiller converts the
    # batch for the teacher (teacher_inputs).
    student_recorders=dict(
        head=dict(type='MethodInputsRecorder', source='bbox_head.loss_by_feat')),
    # The model work: the detector's positives, the box crops and the teacher's outputs.
    distill_stages=dict(
        cls2det=dict(
            type='mmstructkd.Cls2DetStage', crop_size=112, context=0.0, clamp_boxes=True,
            min_size=4,  # as the teacher's crops (coco_to_crops.py --min-size 4); released: 0
            layers=['input', 'backbone.maxpool'], max_samples=None)),
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
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='mmstructkd.StudentCheckpointHook'),
]

# Classifier-to-detector distillation, the paper's released recipe (NVlabs/DICOD,
# configs_dev/ssd/ssd300_coco_cls_loc.py): SSD300-VGG16 on COCO distilled from a ResNet-50
# classifier trained on COCO object crops (resnet50_8xb32-30e_coco-crops-112x112.py).
# Recognition KD: T = 2, weight 0.4, into the softmax scores of SSD's positive anchors
# (background gets 0 from the teacher). Localization KD: L1 of the teacher's input pixels
# (pooled 4x4) and first stage (pooled 8x8) between the 112x112 crops of each predicted box and
# its ground-truth box, weight 0.15. The student trains as the stock ssd300_coco.py.
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
    distill_losses=dict(
        loss_cls2det=dict(
            type='mmstructkd.Cls2DetLoss', crop_size=112, context=0.0,
            min_size=4,  # as the teacher's crops (coco_to_crops.py --min-size 4)
            recognition=dict(tau=2.0, loss_weight=0.4),
            localization=dict(layers=['input', 'backbone.layer1'], pool_sizes=[4, 8],
                              loss_weight=0.15, max_samples=512))),
    loss_forward_mappings=dict(
        loss_cls2det=dict(head_inputs=dict(from_student=True, recorder='head'))))
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW'),
    dict(type='mmstructkd.StudentCheckpointHook'),
]

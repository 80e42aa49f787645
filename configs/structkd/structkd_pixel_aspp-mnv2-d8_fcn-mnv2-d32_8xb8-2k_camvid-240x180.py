# Structured KD on CamVid, pixel-wise term: the ASPP MobileNetV2-d8 teacher into the FCN
# MobileNetV2-d32 student (benchmarks/structkd_camvid.py trains the teacher first).
# On another dataset (docs/own_data.md): a child config sets data_root, metainfo, num_classes
# and teacher_ckpt at the top level; student, teacher and critic follow (nothing under model).
_base_ = ['./fcn_mobilenetv2-d32_8xb8-2k_camvid-240x180.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
teacher_ckpt = 'work_dirs/benchmarks/structkd_camvid/teacher/iter_2000.pth'
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/aspp_mobilenetv2-d8_8xb8-2k_camvid-240x180.py',
                 pretrained=False),
    teacher_ckpt=teacher_ckpt,
    num_classes=_base_.num_classes,  # of student and teacher
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='decode_head.convs')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
    distill_losses=dict(
        loss_pixel=dict(type='PixelWiseLoss', tau=1.0, loss_weight=10.0, divergence='ce',
                        normalize='image_area', ignore_index=None)),
    loss_forward_mappings=dict(
        loss_pixel=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))

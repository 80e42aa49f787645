# Pixel-wise logit KD: PSPNet-R101-d8 (teacher, 79.76 mIoU released checkpoint) into
# PSPNet-R18-d8 on Cityscapes. Everything but the model comes from the student's stock config.
_base_ = ['mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_512x1024_80k_cityscapes/pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    # pretrained=False: the teacher's weights come from teacher_ckpt, not from ImageNet init.
    teacher=dict(cfg_path='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
                 pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=10.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

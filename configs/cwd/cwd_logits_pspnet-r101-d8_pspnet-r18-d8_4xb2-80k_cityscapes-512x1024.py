# Channel-wise distillation (Shu et al., ICCV 2021) on the score maps: PSPNet-R101-d8 (teacher,
# 79.76 mIoU released) -> PSPNet-R18-d8 (74.87 alone) on Cityscapes. The CWD authors' recipe for
# logits (their README's command): tau = 4, loss weight 3. mmrazor's config of this pair uses
# tau = 1, loss weight 3 (its 75.54 mIoU): set loss_cwd.tau=1.0 for that.
_base_ = ['mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_512x1024_80k_cityscapes/pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
                 pretrained=False),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
    distill_losses=dict(loss_cwd=dict(type='ChannelWiseDivergence', tau=4.0, loss_weight=3.0)),
    loss_forward_mappings=dict(
        loss_cwd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# Structured KD (Liu et al., TPAMI 2020), pixel-wise term alone: PSPNet-R101-d8 (teacher,
# 79.76 mIoU released) -> PSPNet-R18-d8 (74.87 mIoU alone) on Cityscapes, the official code's
# forms (configs/structkd/README.md, Fidelity). Its weights: lambda_pi = 10, lambda_pa = 0.5,
# lambda_d = 0.1, WGAN-GP lambda 10. The official pixel term sums over the images of a GPU's
# batch (8 on its one GPU); here a GPU holds 2 (4 GPUs x 2, the same 8 in all, gradients
# averaged over GPUs), so lambda_pi = 10 x 8 / 2 = 40 weighs the term as the official run does.
# With another number of images per GPU, scale it: 10 x 8 / (images per GPU).
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
    # Score maps (logits at 1/8 resolution) and the features the classifier sees (the PSP
    # module's bottleneck output: 512 channels for R101, 128 for R18).
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
    distill_losses=dict(
        loss_pixel=dict(type='PixelWiseLoss', tau=1.0, loss_weight=40.0, divergence='ce',
                        normalize='image_area', ignore_index=None)),
    loss_forward_mappings=dict(
        loss_pixel=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# Structured KD, all three terms: DeepLabV3-R101-d8 (teacher, 80.20 mIoU released) ->
# DeepLabV3-R18-d8 (76.70 mIoU alone) on Cityscapes. Data, schedule and losses are those of the
# PSPNet pair (the same stock Cityscapes 80k set-up); only the two models change. Both heads
# have a bottleneck (ASPP output) and a conv_seg, so the recorders stay as they are.
_base_ = [
    './structkd_pixel-pair-holistic_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py'
]
teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x1024_80k_cityscapes/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'  # noqa: E501
model = dict(
    student=dict(
        _delete_=True,
        cfg_path='mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher_ckpt=teacher_ckpt)

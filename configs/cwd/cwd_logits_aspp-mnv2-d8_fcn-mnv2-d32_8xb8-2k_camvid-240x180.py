# Channel-wise distillation on CamVid: the score maps of the ASPP MobileNetV2-d8 teacher into the
# FCN MobileNetV2-d32 student (the StructKD CamVid pair), the CWD authors' logit recipe.
_base_ = ['../structkd/structkd_pixel_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_cwd=dict(type='ChannelWiseDivergence', tau=4.0, loss_weight=3.0)),
    loss_forward_mappings=dict(
        _delete_=True,
        loss_cwd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))

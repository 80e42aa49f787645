# Structured KD, all three terms (the paper's full method) in the official code's forms:
# task + pixel (lambda 10 at 8 images per GPU: 40 at this config's 2, see the pixel config) +
# 0.5 pair + 0.1 adversarial (critic loss x 0.1).
_base_ = ['./structkd_holistic_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    distill_losses=dict(
        loss_pixel=dict(type='PixelWiseLoss', tau=1.0, loss_weight=40.0, divergence='ce',
                        normalize='image_area', ignore_index=None),
        loss_pair=dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                       loss_weight=0.5)),
    loss_forward_mappings=dict(
        loss_pixel=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))))

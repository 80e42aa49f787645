# Structured KD, pair-wise term alone (nodes: 2x2 patches of the bottleneck feature, average
# pooled; global connection range; lambda_pa = 1).
_base_ = ['./structkd_pixel_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_pair=dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                       loss_weight=0.5)),
    loss_forward_mappings=dict(
        _delete_=True,
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))))

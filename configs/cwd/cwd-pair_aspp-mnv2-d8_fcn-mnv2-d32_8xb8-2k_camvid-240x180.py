# CWD on the score maps plus StructKD's pair-wise term (official form) on the head features.
_base_ = ['./cwd_logits_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    distill_losses=dict(
        loss_pair=dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                       loss_weight=0.5)),
    loss_forward_mappings=dict(
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))))

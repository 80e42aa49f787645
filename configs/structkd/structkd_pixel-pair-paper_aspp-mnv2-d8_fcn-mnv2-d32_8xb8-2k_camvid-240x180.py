# Structured KD on CamVid, pixel-wise + pair-wise in the paper's reading (not the official
# code's): pair-wise nodes are 2x2 patches averaged (beta = 2), plain cosine similarity (norms
# with gradient), lambda_pa = 1; the pixel term as the official code.
_base_ = ['./structkd_pixel-pair_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    distill_losses=dict(
        loss_pair=dict(_delete_=True, type='PairWiseLoss', node_size=2, pool='avg',
                       detach_norm=False, loss_weight=1.0)))

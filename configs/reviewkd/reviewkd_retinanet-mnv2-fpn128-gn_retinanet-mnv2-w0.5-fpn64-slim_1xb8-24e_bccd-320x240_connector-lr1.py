# Ablation of the BCCD ReviewKD config: the connector at the student's lr (the paper's setting,
# made for ~90k-iteration schedules). On this 624-iteration schedule it leaves the connector
# unfitted (configs/reviewkd/README.md, "BCCD").
_base_ = ['./reviewkd_retinanet-mnv2-fpn128-gn_retinanet-mnv2-w0.5-fpn64-slim_1xb8-24e_'
          'bccd-320x240.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'connectors': dict(lr_mult=1.0)}))

# BCCD ablation: recognition KD alone (see cls2det_mnv2-crops_retinanet-...-bccd-320x240.py).
_base_ = ['./cls2det_mnv2-crops_retinanet-mnv2-w0.5-fpn64-slim_1xb8-24e_bccd-320x240.py']
model = dict(distill_stages=dict(cls2det=dict(layers=None)),
             distill_losses=dict(loss_cls2det=dict(localization=None)))

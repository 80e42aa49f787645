# The CamVid benchmark's teacher: the ASPP MobileNetV2-d8 of
# aspp_mobilenetv2-d8_8xb8-2k_camvid-240x180.py, trained 4000 iterations with a class-balanced
# cross-entropy, so that the thin classes (Pole, SignSymbol, Pedestrian, Bicyclist: 0-0.3 IoU
# with the plain loss at 1500 iterations) are learnt and can be distilled.
# Class weights: square root of median-frequency balancing (SegNet's CamVid weights, softened),
# from the pixel counts of the 367 training label maps (void left out), scaled so that their
# pixel-weighted mean is 1 (the loss keeps its scale):
#   w_c = sqrt(median(f) / f_c) / sum_k f_k sqrt(median(f) / f_k),  f_c = pixels of class c / all
# (mmseg 1.2.2's CrossEntropyLoss(class_weight=...) fails on the void label: our drop-in.)
_base_ = ['./aspp_mobilenetv2-d8_8xb8-2k_camvid-240x180.py']
class_weight = [0.879, 0.747, 3.628, 0.638, 1.7, 1.155, 3.328, 3.39, 1.487, 4.502, 6.669]
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type='mmstructkd.WeightedCrossEntropyLoss',
                         class_weight=class_weight, loss_weight=1.0)))
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
max_iters = 4000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)

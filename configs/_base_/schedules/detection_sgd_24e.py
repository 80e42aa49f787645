# SGD, 24 epochs, linear warm-up over 100 iterations, x0.1 at epochs 16 and 22; validation at the
# end. Gradient clipping as mmdet's RetinaNet/FCOS recipes use. Written against max_epochs and
# warmup_iters: a child config that sets max_epochs = 12 gets the loop, validation and the
# decays (at 8 and 11) of that length; the warm-up is set by warmup_iters (mmstructkd's tools
# warn when it is longer than the run: few images make short epochs).
max_epochs = 24
warmup_iters = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    # end: max_epochs (the Runner's default); milestones: 2/3 and 11/12 of the run
    dict(type='MultiStepLR', by_epoch=True, begin=0,
         milestones=[round(max_epochs * 2 / 3), round(max_epochs * 11 / 12)], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=8)

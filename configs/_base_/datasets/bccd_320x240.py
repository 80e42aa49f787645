# BCCD blood cells (RBC, WBC, Platelets), 320x240, COCO-format annotations: the set-up of
# ../shared/data/bccd (images/, annotations/instances_{train,val,test}.json; 205 / 87 / 72
# images). Set data_root to your copy. Another COCO-format dataset in that layout: a child
# config sets data_root, metainfo (and num_classes, which follows metainfo), and mmstructkd's
# tools apply them wherever this file used them, val_evaluator.ann_file included
# (docs/own_data.md).
dataset_type = 'CocoDataset'
data_root = '../shared/data/bccd/'
metainfo = dict(classes=('RBC', 'WBC', 'Platelets'),
                palette=[(220, 20, 60), (0, 0, 230), (0, 160, 0)])
num_classes = len(metainfo['classes'])  # the detectors' class count (no background class)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(320, 240), ratio_range=(0.8, 1.25), keep_ratio=True),
    # blood smears have no up or down: flip both ways
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 240), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='images/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='images/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox', classwise=True)
test_evaluator = val_evaluator

"""Block-wise training: candidates learn their teacher unit's function."""
import torch
from mmengine.config import Config

from mmstructkd.compression import BlockwiseTrainer, build_classifier
from tests.conftest import CONFIG_DIR


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [dict(inputs=[(torch.rand(3, 16, 16, generator=g) * 255).to(torch.uint8)
                         for _ in range(4)]) for _ in range(n)]


def tiny_teacher():
    """A random tiny ResNet_CIFAR whose BatchNorm statistics are those of the test batches
    (as a trained teacher's are of its data), so its features have their natural scale."""
    cfg = Config.fromfile(f'{CONFIG_DIR}/tiny_cls_student.py')
    torch.manual_seed(0)
    model = build_classifier(cfg)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running statistics = the average over the batches seen
    model.train()
    with torch.no_grad():
        for batch in batches(6):
            model.backbone(model.data_preprocessor(batch, False)['inputs'])
    return model.eval()


def test_block_wise_training_lowers_the_regression_error():
    teacher = tiny_teacher()
    candidates = {'layer2': [
        dict(type='ResidualStage', block='BasicBlock', in_channels=8, out_channels=16,
             num_blocks=2, stride=2, expansion=1),
        dict(type='InvertedResidualStage', in_channels=8, out_channels=16, num_blocks=1,
             stride=2, expand_ratio=2, act_cfg=dict(type='ReLU')),
    ]}
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    trainer = BlockwiseTrainer(teacher, candidates, iters=40, eval_iters=2, lr=3e-2,
                               log_interval=0)
    results = trainer.run(batches(6))['layer2']
    keep, separable = results
    # The teacher's own block keeps the teacher's weights: no error, nothing trained.
    assert keep.error < 1e-10 and keep.init_error < 1e-10
    # The new block starts far off (random init) and regression brings it much closer.
    assert separable.init_error > 0.5
    assert separable.error < 0.5 * separable.init_error
    # The teacher itself is untouched (weights and BN statistics).
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=k)


def test_fewer_repeats_start_from_the_teachers_first_blocks():
    teacher = tiny_teacher()
    spec = dict(type='ResidualStage', block='BasicBlock', in_channels=8, out_channels=16,
                num_blocks=1, stride=2, expansion=1)
    keep = dict(spec, num_blocks=2)
    trainer = BlockwiseTrainer(teacher, {'layer2': [keep, spec]}, iters=0, eval_iters=1)
    shorter = trainer.modules['layer2'][1]
    for k, v in shorter.state_dict().items():
        torch.testing.assert_close(v, teacher.backbone.layer2.state_dict()[k])

"""The shipped StructKD configs carry the official code's forms and weights (README Fidelity)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import REPO_ROOT

SEG_CONFIGS = sorted(p for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'structkd',
                                                   'structkd_*.py'))
                     if 'fcos' not in p and 'depth' not in p and 'paper' not in p)
OFFICIAL_PIXEL = dict(type='PixelWiseLoss', tau=1.0, divergence='ce', normalize='image_area',
                      ignore_index=None)
OFFICIAL_PAIR = dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                     loss_weight=0.5)


def images_per_gpu(cfg) -> int:
    return cfg.train_dataloader.batch_size


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=osp.basename)
def test_segmentation_configs_use_the_official_forms_and_weights(path):
    cfg = Config.fromfile(path)
    losses = cfg.model.get('distill_losses') or {}
    terms = osp.basename(path).split('_')[1].split('-')
    assert ('loss_pixel' in losses) == ('pixel' in terms)
    assert ('loss_pair' in losses) == ('pair' in terms)
    if 'loss_pixel' in losses:
        pixel = dict(losses['loss_pixel'])
        # lambda_pi = 10 at the official 8 images per GPU, scaled to this config's.
        assert pixel.pop('loss_weight') == pytest.approx(10 * 8 / images_per_gpu(cfg))
        assert pixel == OFFICIAL_PIXEL
    if 'loss_pair' in losses:
        assert dict(losses['loss_pair']) == OFFICIAL_PAIR
    if 'holistic' in terms:
        model = cfg.model
        assert model.type == 'mmstructkd.AdversarialDistiller'
        assert (model.adv_loss_weight, model.critic_loss_weight, model.gp_weight,
                model.gp_score) == (0.1, 0.1, 10.0, 'sum')
        critic = model.discriminator
        assert critic.get('last_layer', 'conv4x4') == 'conv4x4' and not critic.with_image
        optimizer = cfg.optim_wrapper.discriminator.optimizer
        assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == \
            ('SGD', 4e-4, 0.9, 5e-4)
        schedule, = cfg.param_scheduler.discriminator
        assert (schedule.type, schedule.power, schedule.eta_min) == ('PolyLR', 0.9, 0.0)


def test_the_paper_reading_variant_differs_only_in_the_pair_wise_term():
    paper = Config.fromfile(osp.join(
        REPO_ROOT, 'configs', 'structkd',
        'structkd_pixel-pair-paper_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py'))
    official = Config.fromfile(osp.join(
        REPO_ROOT, 'configs', 'structkd',
        'structkd_pixel-pair_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py'))
    assert dict(paper.model.distill_losses.loss_pair) == dict(
        type='PairWiseLoss', node_size=2, pool='avg', detach_norm=False, loss_weight=1.0)
    assert paper.model.distill_losses.loss_pixel == official.model.distill_losses.loss_pixel

from .cls2det_loss import Cls2DetLoss, Cls2DetTargets
from .cwd_loss import ChannelWiseDivergence
from .feature_mse_loss import FeatureMSELoss
from .hcl_loss import HCLLoss
from .kd_loss import KDLoss
from .pair_wise_loss import PairWiseLoss
from .pixel_wise_loss import PixelWiseLoss
from .stkd_loss import STKDLoss
from .weighted_cross_entropy_loss import WeightedCrossEntropyLoss

__all__ = [
    'KDLoss', 'FeatureMSELoss', 'PixelWiseLoss', 'PairWiseLoss', 'HCLLoss', 'STKDLoss',
    'Cls2DetLoss', 'Cls2DetTargets', 'ChannelWiseDivergence', 'WeightedCrossEntropyLoss'
]

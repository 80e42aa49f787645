from .abf import ABF
from .conv_connector import ConvConnector
from .review_kd_connector import ReviewKDConnector

__all__ = ['ConvConnector', 'ABF', 'ReviewKDConnector']

"""Small building blocks shared by the networks."""

from __future__ import annotations

from torch import nn


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution with replication padding (edge values, not zeros, at patch borders)."""
    return nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride))


class ResBlock(nn.Module):
    """Two reflection-padded 3×3 convolutions with dropout and a skip connection."""

    def __init__(self, channels: int, dropout: float = 0.5):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.Dropout(dropout), nn.LeakyReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.Dropout(dropout),
        )

    def forward(self, x):
        return x + self.body(x)

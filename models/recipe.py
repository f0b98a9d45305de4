"""How a network is trained, declared by the network's own module (as torchgeo's task hooks do).

The trainer (backend/training/train.py) asks only these questions of a model, so adding a
network is its module and one registry entry: no branch on a model's name anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .contract import Contract

# loss(net, modules, x, y, mask) -> (loss, prediction kept where observed, raw prediction); ``net`` is the
# PaddedModel around the network, ``modules`` the extra modules by name.
Loss = Callable[[nn.Module, dict[str, nn.Module], Any, Any, Any], tuple[Any, Any, Any]]


@dataclass(frozen=True)
class Extra:
    """A module trained beside the network (EDCSTFN's feature autoencoder, MLFF-GAN's discriminator),
    with its own Adam optimiser."""

    build: Callable[[Contract], nn.Module]
    learning_rate: float | None = None  # None: the network's
    betas: tuple[float, float] | None = None  # None: the network's
    frozen: bool = False  # eval mode and no gradients while the network trains (a pretrained loss network)


@dataclass(frozen=True)
class Recipe:
    """The published training of a network: optimiser settings, extra modules, losses and steps."""

    loss: Loss
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    extras: tuple[tuple[str, Extra], ...] = ()  # built in this order, after the network's optimiser
    # One step of a pretraining that runs before the first epoch of a new run:
    # pretrain(modules, optimisers, x, contract, autocast) -> loss.
    pretrain: Callable[..., float] | None = None
    # After each step of the network: after_step(modules, optimisers, x, y, mask, prediction, autocast)
    # (MLFF-GAN updates its discriminator here).
    after_step: Callable[..., None] | None = None

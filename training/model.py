"""The CNNs: the seed network from DESIGN.md and the variants measured against it."""

from __future__ import annotations

import keras
from keras import layers

# Seed layout: name -> (filters of block 1, filters of block 2, keep the seed's early max-pool, BN before ReLU)
SEED_LAYOUTS = {
    "seed": (32, 64, True, False),  # the seed network, exactly as in DESIGN.md
    # Without the early pool 4x4x64 maps reach the classifier. Conv -> BN -> ReLU lets the
    # converter fold each BN into its conv; BN after ReLU stays two extra int8 ops per layer,
    # which cost 0.4 point of accuracy after int8 quantization (measured on MNIST t10k).
    "seed-nopool": (32, 64, False, True),
    "seed-nopool-head": (32, 64, False, True),  # + Conv128(4) on the 4x4 maps: a 128-wide head
    "seed-nopool-wide": (48, 96, False, True),  # 1.5x the filters: about 2x the parameters of seed-nopool
}
# VGG layout: name -> (filters, 3x3 convs) per stage at 28, 14 and 7 px, each stage ending in a max-pool.
# "Same" padding keeps the strokes at the image's edge, which the seed's "valid" convs trim away.
VGG_LAYOUTS = {
    "vgg": ((32, 2), (64, 2), (128, 2)),
    "vgg-deep": ((32, 2), (64, 3), (128, 3)),  # one more conv at 14 and at 7 px: about 1.5x the parameters
}
ARCHITECTURES = [*SEED_LAYOUTS, *VGG_LAYOUTS]


def conv(filters: int, size: int, bn_first: bool, strides: int = 1, padding: str = "valid") -> list:
    if bn_first:
        return [
            layers.Conv2D(filters, size, strides=strides, padding=padding, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
        ]
    return [
        layers.Conv2D(filters, size, strides=strides, padding=padding, activation="relu"),
        layers.BatchNormalization(),
    ]


def build_model(architecture: str, classes: int) -> keras.Model:
    if architecture in VGG_LAYOUTS:
        return build_vgg(architecture, classes)
    return build_seed(architecture, classes)


def build_vgg(architecture: str, classes: int) -> keras.Model:
    """Stages of Conv-BN-ReLU x n, MaxPool, Drop | Flatten Drop Dense."""
    stack = [keras.Input((28, 28, 1))]
    for filters, convs in VGG_LAYOUTS[architecture]:
        for _ in range(convs):
            stack += conv(filters, 3, bn_first=True, padding="same")
        stack += [layers.MaxPooling2D(), layers.Dropout(0.3)]
    stack += [layers.Flatten(), layers.Dropout(0.4), layers.Dense(classes, activation="softmax")]
    return keras.Sequential(stack, name=architecture)


def build_seed(architecture: str, classes: int) -> keras.Model:
    """Seed layout: Conv MaxPool Conv BN Conv/2 BN Drop | Conv BN Conv BN Conv/2 BN Drop | Flatten Drop Dense."""
    f1, f2, pool, bn_first = SEED_LAYOUTS[architecture]
    stack = [keras.Input((28, 28, 1))]
    if pool:
        stack += [layers.Conv2D(f1, 3, activation="relu"), layers.MaxPooling2D()]
    else:
        stack += conv(f1, 3, bn_first)
    stack += conv(f1, 3, bn_first)
    stack += conv(f1, 5, bn_first, strides=2, padding="same")
    stack += [layers.Dropout(0.4)]
    stack += conv(f2, 3, bn_first)
    stack += conv(f2, 3, bn_first)
    stack += conv(f2, 5, bn_first, strides=2, padding="same")
    stack += [layers.Dropout(0.4)]
    if architecture.endswith("-head"):
        stack += conv(128, 4, bn_first)
    stack += [layers.Flatten(), layers.Dropout(0.4), layers.Dense(classes, activation="softmax")]
    return keras.Sequential(stack, name=architecture)

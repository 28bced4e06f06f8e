"""The CNNs: the seed network from DESIGN.md and the variants measured against it."""

from __future__ import annotations

import keras
from keras import layers

# name -> (filters of block 1, filters of block 2, keep the seed's early max-pool)
ARCHITECTURES = {
    "seed": (32, 64, True),  # the seed network, exactly as in DESIGN.md
    "seed-nopool": (32, 64, False),  # without the early pool, 4x4x64 maps reach the classifier
    "wide-nopool": (48, 96, False),  # 1.5x filters, for the 47 character classes
}


def build_model(architecture: str, classes: int) -> keras.Model:
    """Seed layout: Conv MaxPool Conv BN Conv/2 BN Drop | Conv BN Conv BN Conv/2 BN Drop | Flatten Drop Dense."""
    f1, f2, pool = ARCHITECTURES[architecture]
    stack = [keras.Input((28, 28, 1)), layers.Conv2D(f1, 3, activation="relu")]
    stack += [layers.MaxPooling2D()] if pool else [layers.BatchNormalization()]
    stack += [
        layers.Conv2D(f1, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(f1, 5, strides=2, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.4),
        layers.Conv2D(f2, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(f2, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(f2, 5, strides=2, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.4),
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(classes, activation="softmax"),
    ]
    return keras.Sequential(stack, name=architecture)

"""Augmentation that matches how people draw and photograph characters.

Small rotations, shifts and scale changes stand for where and how large a
person writes; dilation stands for a thicker pen. No flips: a flipped
character is another character (or none).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

THICKEN_PROBABILITY = 0.2


def make_augmenter(seed: int, strength: float = 1.0) -> keras.Sequential:
    """Strength 1.0: rotation up to 10 degrees, scale and shift up to 10 %."""
    return keras.Sequential(
        [
            layers.RandomRotation(strength * 10 / 360, fill_mode="constant", seed=seed),
            layers.RandomZoom(strength * 0.1, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(strength * 0.1, strength * 0.1, fill_mode="constant", seed=seed + 2),
        ]
    )


def thicken_some(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Dilate a random fifth of a (batch, 28, 28, 1) batch by one pixel."""
    thick = tf.nn.max_pool2d(images, ksize=2, strides=1, padding="SAME")
    pick = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < THICKEN_PROBABILITY
    return tf.where(pick, thick, images)


def augmented_batches(
    images: tf.Tensor, labels: tf.Tensor, batch_size: int, augment: float, seed: int
) -> tf.data.Dataset:
    """Shuffled batches of float images in [0, 1], augmented at strength `augment` (0: not at all)."""
    augmenter = make_augmenter(seed, float(augment))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=seed).batch(batch_size)

    def transform(x, y):
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        if augment:
            x = thicken_some(augmenter(x, training=True), seed)
        return x, y

    return data.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

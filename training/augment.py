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
ELASTIC_SIGMA = 4.0  # px: how smooth the random displacement field is (Simard et al. 2003, with alpha 34)
ELASTIC_SHARE = 0.5  # of the augmented images, these are also distorted elastically


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


def elastic_some(images: tf.Tensor, alpha: float, seed: int) -> tf.Tensor:
    """Distort ELASTIC_SHARE of a (batch, 28, 28, 1) batch by a smooth random field scaled by `alpha`.

    Each pixel is read from where the field points (bilinear, zero outside):
    strokes bend and wobble the way one writer's differ from another's, which
    rotation, scale and shift cannot give. alpha 34 with sigma 4 moves pixels
    by about 1.4 px on average.
    """
    shape = tf.shape(images)
    n, height, width = shape[0], shape[1], shape[2]
    radius = int(3 * ELASTIC_SIGMA)
    taps = tf.exp(-0.5 * (tf.range(-radius, radius + 1, dtype=tf.float32) / ELASTIC_SIGMA) ** 2)
    taps /= tf.reduce_sum(taps)
    field = tf.random.uniform([n, height, width, 2], -1.0, 1.0, seed=seed)
    field = tf.nn.depthwise_conv2d(field, tf.tile(taps[:, None, None, None], [1, 1, 2, 1]), [1, 1, 1, 1], "SAME")
    field = tf.nn.depthwise_conv2d(field, tf.tile(taps[None, :, None, None], [1, 1, 2, 1]), [1, 1, 1, 1], "SAME")
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    y = tf.clip_by_value(rows + alpha * field[..., 0], -1.0, tf.cast(height, tf.float32))
    x = tf.clip_by_value(cols + alpha * field[..., 1], -1.0, tf.cast(width, tf.float32))
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # zero outside, so every corner read exists
    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = y - y0, x - x0
    y0, x0 = tf.cast(y0, tf.int32) + 1, tf.cast(x0, tf.int32) + 1
    y1, x1 = tf.minimum(y0 + 1, height + 1), tf.minimum(x0 + 1, width + 1)
    batch = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(y0))

    def at(yy, xx):
        return tf.gather_nd(padded, tf.stack([batch, yy, xx], axis=-1))

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    distorted = (top * (1 - wy) + bottom * wy)[..., None]
    pick = tf.random.uniform([n, 1, 1, 1], seed=seed + 1) < ELASTIC_SHARE
    return tf.where(pick, distorted, images)


def augmented_batches(
    images: tf.Tensor, labels: tf.Tensor, batch_size: int, augment: float, seed: int, elastic: float = 0.0
) -> tf.data.Dataset:
    """Shuffled batches of float images in [0, 1], augmented at strength `augment` (0: not at all),
    and with `elastic` > 0 (the field's alpha) some of them also distorted elastically."""
    augmenter = make_augmenter(seed, float(augment))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=seed).batch(batch_size)

    def transform(x, y):
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        if augment:
            x = thicken_some(augmenter(x, training=True), seed)
            if elastic:
                x = elastic_some(x, elastic, seed)
        return x, y

    return data.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

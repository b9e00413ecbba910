"""Temperature scaling of a distribution (beyond the paper): the temperature T that minimises the
negative log-likelihood of the true classes, and p^(1/T) renormalised.

One temperature divides a head's logits before the softmax (T > 1 softens, T < 1 sharpens; the
ranking of the classes stays); a distribution given as probabilities (f*) is tempered as p^(1/T).
"""
import numpy as np

# Candidate temperatures, log-spaced (about 10 % apart); the minimum is refined by a parabola.
GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 64))
TINY = 1e-300         # the smallest probability taken to a log


def _log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def nll_grid(logits, labels, temperatures=GRID) -> np.ndarray:
    """Summed negative log-likelihood of the labels at each temperature.

    Args:
      logits: float [N, n] or [N, crops, n]; with crops, the probability is the crops' mean
        softmax (§3.4), as at test time.
      labels: int [N]; images with a label < 0 (in no cell) are left out.
      temperatures: float [T].
    Returns:
      float64 [T].
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim == 2:
        logits = logits[:, None]
    labels = np.asarray(labels, np.int64)
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    out = np.zeros(len(temperatures))
    if not len(labels):
        return out
    for k, t in enumerate(temperatures):
        log_p = np.take_along_axis(_log_softmax(logits / t), labels[:, None, None], axis=-1)[..., 0]  # [N, crops]
        top = log_p.max(axis=1, keepdims=True)
        log_mean = top[:, 0] + np.log(np.exp(log_p - top).mean(axis=1))
        out[k] = -log_mean.sum()
    return out


def best_temperature(nll, temperatures=GRID) -> float:
    """The minimum of a NLL curve over the grid, refined by a parabola through its neighbours in log T."""
    nll = np.asarray(nll, np.float64)
    k = int(np.argmin(nll))
    if k == 0 or k == len(nll) - 1:
        return float(temperatures[k])
    x = np.log(temperatures[k - 1:k + 2])
    y = nll[k - 1:k + 2]
    denominator = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denominator
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denominator
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[2]))) if a > 0 else float(temperatures[k])


def fit_temperature(logits, labels) -> float:
    """The temperature minimising the NLL of `labels` under softmax(logits / T) (see `nll_grid`)."""
    return best_temperature(nll_grid(logits, labels))


def temper(probs, temperature: float) -> np.ndarray:
    """p^(1/T) renormalised per row: the temperature of a distribution given as probabilities."""
    log_p = np.log(np.maximum(np.asarray(probs, np.float64), TINY)) / temperature
    p = np.exp(log_p - log_p.max(axis=-1, keepdims=True)) * (np.asarray(probs) > 0)
    return p / np.maximum(p.sum(axis=-1, keepdims=True), TINY)


def temper_tf(probs, temperature: float):
    """`temper` in TensorFlow: float [B, n] -> float32 [B, n]."""
    import tensorflow as tf

    probs = tf.cast(probs, tf.float64)
    log_p = tf.math.log(tf.maximum(probs, TINY)) / temperature
    p = tf.exp(log_p - tf.reduce_max(log_p, axis=-1, keepdims=True)) * tf.cast(probs > 0, tf.float64)
    return tf.cast(p / tf.maximum(tf.reduce_sum(p, axis=-1, keepdims=True), TINY), tf.float32)


__all__ = ["GRID", "TINY", "best_temperature", "fit_temperature", "nll_grid", "temper", "temper_tf"]

"""Vectorised S2 cell ids for many points at once, in numpy and in TensorFlow.

The official s2geometry bindings convert one point per call; at MP-16 scale (4.7 M photos,
§3.1) that costs minutes. This module computes the same 64-bit leaf-cell ids for whole arrays:
lat/lon -> unit vector -> cube face and (u, v) -> quadratic (s, t) -> (i, j) on the 2^30 grid ->
Hilbert-curve position, exactly as S2's `S2CellId(S2LatLng)` does (checked against the
bindings in the tests). Cell ids are `np.uint64`; in TensorFlow, which has no unsigned 64-bit
comparisons, they travel as `tf.int64` with the same bits.

Notation: a cell at level L has its lowest set bit at position 2 * (30 - L); its leaf cells
occupy the id range [id - lsb + 1, id + lsb - 1].
"""
import concurrent.futures
import os

import numpy as np

MAX_LEVEL = 30
_LOOKUP_BITS = 4
_SWAP_MASK = 1
_INVERT_MASK = 2
_POS_TO_IJ = ((0, 1, 3, 2), (0, 2, 3, 1), (3, 2, 0, 1), (3, 1, 0, 2))
_POS_TO_ORIENTATION = (_SWAP_MASK, 0, 0, _INVERT_MASK | _SWAP_MASK)
_LIMIT_IJ = 1 << MAX_LEVEL


def _build_lookup_pos() -> np.ndarray:
    """S2's table from 4 bits of i, 4 bits of j and an orientation to 8 Hilbert bits + orientation."""
    table = np.zeros(1 << (2 * _LOOKUP_BITS + 2), dtype=np.int64)

    def init(level, i, j, orig_orientation, pos, orientation):
        if level == _LOOKUP_BITS:
            ij = (i << _LOOKUP_BITS) + j
            table[(ij << 2) + orig_orientation] = (pos << 2) + orientation
            return
        r = _POS_TO_IJ[orientation]
        for index in range(4):
            init(level + 1, (i << 1) + (r[index] >> 1), (j << 1) + (r[index] & 1),
                 orig_orientation, (pos << 2) + index, orientation ^ _POS_TO_ORIENTATION[index])

    for orientation in (0, _SWAP_MASK, _INVERT_MASK, _SWAP_MASK | _INVERT_MASK):
        init(0, 0, 0, orientation, 0, orientation)
    return table


def _compose_lookup(table4: np.ndarray) -> np.ndarray:
    """Twice S2's lookup step in one table: 8 bits of i and j per gather instead of 4."""
    entry = np.arange(1 << 18, dtype=np.int64)  # (i8 << 10) | (j8 << 2) | orientation
    i8, j8, orientation = entry >> 10, (entry >> 2) & 0xFF, entry & 3
    hi = table4[((i8 >> 4) << 6) | ((j8 >> 4) << 2) | orientation]
    lo = table4[((i8 & 0xF) << 6) | ((j8 & 0xF) << 2) | (hi & 3)]
    return (((hi >> 2) << 8 | (lo >> 2)) << 2) | (lo & 3)


LOOKUP_POS = _compose_lookup(_build_lookup_pos())  # [2^18]: 16 Hilbert bits << 2 | orientation
_STEP_BITS = 2 * _LOOKUP_BITS  # bits of i and of j consumed per lookup


def _face_uv(x, y, z, xp):
    """Cube face (0..5) and its (u, v) coordinates of unit vectors, as S2's XYZtoFaceUV.

    face 0: (y, z)/x  1: (-x, z)/y  2: (-x, -y)/z  3: (z, y)/x  4: (z, -x)/y  5: (-y, -x)/z
    """
    ax, ay, az = xp.abs(x), xp.abs(y), xp.abs(z)
    x_axis = (ax > ay) & (ax > az)
    y_axis = ~x_axis & (ay > az)
    comp = xp.where(x_axis, x, xp.where(y_axis, y, z))
    negative = comp < 0
    axis = xp.where(x_axis, 0, xp.where(y_axis, 1, 2))
    face = axis + xp.where(negative, 3, 0)
    # Faces 3-5 divide by a negative component: the signs below make (u, v) match S2's table.
    u = xp.where(x_axis, xp.where(negative, z, y), xp.where(y_axis, xp.where(negative, z, -x),
                                                            xp.where(negative, -y, -x))) / comp
    v = xp.where(x_axis, xp.where(negative, y, z), xp.where(y_axis, xp.where(negative, -x, z),
                                                            xp.where(negative, -x, -y))) / comp
    return face, u, v


def _uv_to_st(u, xp):
    """S2's quadratic projection from the cube face to the unit square."""
    return xp.where(u >= 0, 0.5 * xp.sqrt(1 + 3 * xp.maximum(u, 0)),
                    1 - 0.5 * xp.sqrt(1 - 3 * xp.minimum(u, 0)))


def map_chunks(work, n: int, chunk: int = 1 << 16) -> None:
    """Calls `work(slice)` over [0, n) in chunks, on all cores when there are many chunks.

    Small chunks keep numpy's temporaries in the CPU cache; numpy releases the GIL, so threads
    run the chunks in parallel. `work` writes its results into preallocated arrays.
    """
    parts = [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    if len(parts) < 8:
        for part in parts:
            work(part)
        return
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for _ in pool.map(work, parts):
            pass


def leaf_ids(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Level-30 S2 cell ids of points.

    Args:
      lat_deg, lon_deg: float arrays of the same shape [N], in degrees (validated by the caller).
    Returns:
      np.uint64 [N], equal to `s2geometry.S2CellId(S2LatLng.FromDegrees(lat, lon)).id()`.
    """
    lat_deg = np.asarray(lat_deg, dtype=np.float64).ravel()
    lon_deg = np.asarray(lon_deg, dtype=np.float64).ravel()
    out = np.empty(lat_deg.shape, dtype=np.uint64)

    def work(part):
        out[part] = _leaf_ids(lat_deg[part], lon_deg[part])

    map_chunks(work, len(out))
    return out


def _leaf_ids(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    cos_lat = np.cos(lat)
    face, u, v = _face_uv(np.cos(lon) * cos_lat, np.sin(lon) * cos_lat, np.sin(lat), np)
    i = np.clip(np.floor(_LIMIT_IJ * _uv_to_st(u, np)), 0, _LIMIT_IJ - 1).astype(np.int64)
    j = np.clip(np.floor(_LIMIT_IJ * _uv_to_st(v, np)), 0, _LIMIT_IJ - 1).astype(np.int64)
    return _face_ij_to_id(face.astype(np.int64), i, j)


def _face_ij_to_id(face: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """S2's FromFaceIJ: Hilbert position of (i, j) on a face, 8 bits of i and j at a time."""
    mask = (1 << _STEP_BITS) - 1
    pos = np.zeros(face.shape, dtype=np.uint64)
    bits = face & _SWAP_MASK
    for k in range(3, -1, -1):  # 4 steps of 8 bits; the top step holds i, j's bits 24..29
        bits = bits + (((i >> (k * _STEP_BITS)) & mask) << (_STEP_BITS + 2))
        bits = bits + (((j >> (k * _STEP_BITS)) & mask) << 2)
        bits = LOOKUP_POS[bits]
        pos |= (bits >> 2).astype(np.uint64) << np.uint64(k * 2 * _STEP_BITS)
        bits = bits & (_SWAP_MASK | _INVERT_MASK)
    # id = face << 61 | pos << 1 | 1 (the trailing 1 marks a leaf)
    return (face.astype(np.uint64) << np.uint64(61)) | (pos << np.uint64(1)) | np.uint64(1)


def lsb_for_level(level: int) -> np.uint64:
    """The lowest set bit of every cell id at `level`."""
    return np.uint64(1) << np.uint64(2 * (MAX_LEVEL - level))


def parent_ids(ids: np.ndarray, level: int) -> np.ndarray:
    """Ids of the ancestors at `level` of cells at `level` or finer. np.uint64 [N] -> [N]."""
    lsb = lsb_for_level(level)
    return (ids & ~(lsb * np.uint64(2) - np.uint64(1))) | lsb


def cell_levels(ids: np.ndarray) -> np.ndarray:
    """Level (0..30) of each cell id. np.uint64 [N] -> np.int64 [N]."""
    ids = np.asarray(ids, dtype=np.uint64)
    lowest = ids & (~ids + np.uint64(1))  # isolates the lowest set bit
    trailing = np.log2(lowest.astype(np.float64)).round().astype(np.int64)
    return MAX_LEVEL - trailing // 2


def leaf_ranges(ids: np.ndarray):
    """First and last leaf id covered by each cell. np.uint64 [N] -> two np.uint64 [N]."""
    ids = np.asarray(ids, dtype=np.uint64)
    lowest = ids & (~ids + np.uint64(1))
    return ids - (lowest - np.uint64(1)), ids + (lowest - np.uint64(1))


def token_to_id(token: str) -> int:
    """S2 token (hex id without trailing zeros) to its 64-bit id; raises ValueError if malformed."""
    try:
        value = int(token.ljust(16, "0"), 16) if 0 < len(token) <= 16 else 0
    except ValueError:
        value = 0
    if value == 0:
        raise ValueError(f"not an S2 cell token: {token!r}")
    return value


def id_to_token(cell_id: int) -> str:
    """64-bit S2 cell id to its token."""
    return f"{int(cell_id):016x}".rstrip("0")


def is_valid_id(ids: np.ndarray) -> np.ndarray:
    """S2CellId::is_valid for each id: face < 6 and the lowest set bit at an even position."""
    ids = np.asarray(ids, dtype=np.uint64)
    face_ok = (ids >> np.uint64(61)) < np.uint64(6)
    lowest = ids & (~ids + np.uint64(1))
    even = (lowest & np.uint64(0x1555555555555555)) != np.uint64(0)
    return face_ok & even


# ---------------------------------------------------------------------------------------------
# TensorFlow: the same leaf ids as tf.int64 (bit pattern of the uint64 id), usable in tf.data maps
# and SavedModels. Signed comparisons order ids correctly after flipping the sign bit.
SIGN_BIT = np.uint64(1) << np.uint64(63)


def to_ordered_int64(ids: np.ndarray) -> np.ndarray:
    """uint64 ids -> int64 whose signed order equals the ids' unsigned order (sign bit flipped)."""
    return (np.asarray(ids, dtype=np.uint64) ^ SIGN_BIT).view(np.int64)


def leaf_ids_tf(lat_deg, lon_deg):
    """TF version of `leaf_ids`, returned in the sign-flipped ordering of `to_ordered_int64`.

    Args:
      lat_deg, lon_deg: float tensors of the same shape, degrees (float32 is widened to float64).
    Returns:
      tf.int64 tensor of the same shape: `to_ordered_int64(leaf_ids(lat, lon))`.
    """
    import tensorflow as tf

    lat = tf.cast(lat_deg, tf.float64) * (np.pi / 180.0)
    lon = tf.cast(lon_deg, tf.float64) * (np.pi / 180.0)
    cos_lat = tf.cos(lat)
    x, y, z = tf.cos(lon) * cos_lat, tf.sin(lon) * cos_lat, tf.sin(lat)

    face, u, v = _face_uv(x, y, z, tf)
    face = tf.cast(face, tf.int64)

    def to_ij(w):
        w = tf.floor(float(_LIMIT_IJ) * _uv_to_st(w, tf))
        return tf.cast(tf.clip_by_value(w, 0.0, float(_LIMIT_IJ - 1)), tf.int64)

    i, j = to_ij(u), to_ij(v)
    lookup = tf.constant(LOOKUP_POS, dtype=tf.int64)
    mask = (1 << _STEP_BITS) - 1
    pos = tf.zeros_like(face)
    bits = tf.bitwise.bitwise_and(face, _SWAP_MASK)
    for k in range(3, -1, -1):
        bits += tf.bitwise.left_shift(
            tf.bitwise.bitwise_and(tf.bitwise.right_shift(i, k * _STEP_BITS), mask),
            _STEP_BITS + 2)
        bits += tf.bitwise.left_shift(
            tf.bitwise.bitwise_and(tf.bitwise.right_shift(j, k * _STEP_BITS), mask), 2)
        bits = tf.gather(lookup, bits)
        pos = tf.bitwise.bitwise_or(
            pos, tf.bitwise.left_shift(tf.bitwise.right_shift(bits, 2), k * 2 * _STEP_BITS))
        bits = tf.bitwise.bitwise_and(bits, _SWAP_MASK | _INVERT_MASK)
    # face << 61 | pos << 1 | 1, then flip the sign bit: (face ^ 4) << 61 does both at once.
    top = tf.bitwise.left_shift(tf.bitwise.bitwise_xor(face, 4), 61)
    return tf.bitwise.bitwise_or(tf.bitwise.bitwise_or(top, tf.bitwise.left_shift(pos, 1)),
                                 tf.constant(1, tf.int64))

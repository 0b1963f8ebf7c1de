"""Quaternion helpers for numpy arrays.

Convention: (w, x, y, z) order, arrays of shape (..., 4), Hamilton product, active rotations
(`qrot(q, v)` rotates the vector v by q). All functions broadcast over leading dimensions and
compute in the input's floating dtype (integers are promoted to float64).

`quaternion_torch.py` has the same functions, with the same names, for torch tensors.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _check_last(x: np.ndarray, size: int, name: str) -> None:
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got {x.shape}")


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis, written out (faster than np.cross for small arrays)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def qnormalize(q: np.ndarray) -> np.ndarray:
    """Scale quaternions (..., 4) to unit norm."""
    q = _as_float(q)
    _check_last(q, 4, "q")
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a): (..., 4) x (..., 4) -> (..., 4)."""
    a, b = _as_float(a), _as_float(b)
    _check_last(a, 4, "a")
    _check_last(b, 4, "b")
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse quaternion (..., 4): the conjugate divided by the squared norm."""
    q = _as_float(q)
    _check_last(q, 4, "q")
    conj = q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)
    return conj / np.maximum(np.sum(q * q, axis=-1, keepdims=True), _EPS)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); shapes broadcast."""
    q, v = _as_float(q), _as_float(v)
    _check_last(q, 4, "q")
    _check_last(v, 3, "v")
    w, u = q[..., :1], q[..., 1:]
    # v' = v + 2w (u x v) + 2 u x (u x v)
    uv = _cross(u, v)
    return v + 2.0 * (w * uv + _cross(u, uv))


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion taking direction u to direction v: (..., 3) -> (..., 4).

    For (nearly) opposite vectors the arc is not unique; we rotate 180 degrees about an axis
    perpendicular to u (built from the basis axis least aligned with u).
    """
    u, v = _as_float(u), _as_float(v)
    _check_last(u, 3, "u")
    _check_last(v, 3, "v")
    u, v = np.broadcast_arrays(u, v)
    norms = np.sqrt(np.sum(u * u, axis=-1, keepdims=True) * np.sum(v * v, axis=-1, keepdims=True))
    w = norms + np.sum(u * v, axis=-1, keepdims=True)  # (..., 1)
    q = np.concatenate([w, _cross(u, v)], axis=-1)  # (..., 4)
    opposite = w[..., 0] <= 1e-7 * np.maximum(norms[..., 0], _EPS)
    if np.any(opposite):
        uo = u[opposite]  # (N, 3)
        basis = np.eye(3, dtype=u.dtype)[np.argmin(np.abs(uo), axis=-1)]  # (N, 3)
        axis = _cross(uo, basis)
        axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), _EPS)
        q = q.copy()
        q[opposite] = np.concatenate([np.zeros_like(axis[:, :1]), axis], axis=-1)
    return qnormalize(q)


def qfrom_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Unit quaternion for a rotation of `angle` radians about `axis` (..., 3) -> (..., 4)."""
    axis = _as_float(axis)
    _check_last(axis, 3, "axis")
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), _EPS)
    half = 0.5 * np.asarray(angle, dtype=axis.dtype)[..., None]
    return np.concatenate([np.cos(half) * np.ones_like(axis[..., :1]), np.sin(half) * axis], -1)


def qto_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from quaternions (..., 4) (normalised first)."""
    q = qnormalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)  # (..., 3, 3)


def qfrom_matrix(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) with w >= 0 from rotation matrices (..., 3, 3).

    Shepperd's method: of the four algebraically equivalent formulas, each element uses the one
    with the largest denominator, so the result is accurate for every rotation.
    """
    m = _as_float(m)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise ValueError(f"m must have shape (..., 3, 3), got {m.shape}")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * (w^2, x^2, y^2, z^2)
    sq = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    candidates = np.stack(
        [
            np.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            np.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], -1),
            np.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], -1),
            np.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], -1),
        ],
        axis=-2,
    )  # (..., 4, 4): row k is 4 * q * q_k
    best = np.argmax(sq, axis=-1)[..., None, None]  # (..., 1, 1)
    q = np.take_along_axis(candidates, np.broadcast_to(best, (*best.shape[:-1], 4)), -2)[..., 0, :]
    q = qnormalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def qyaw(angle: np.ndarray | float) -> np.ndarray:
    """Rotation about +Y by `angle` radians (...,) -> (..., 4); positive turns +Z towards +X."""
    half = 0.5 * _as_float(np.asarray(angle))
    zero = np.zeros_like(half)
    return np.stack([np.cos(half), zero, np.sin(half), zero], axis=-1)


def qcontinuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs so consecutive quaternions along `axis` have a non-negative dot product.

    q and -q are the same rotation; this picks the sign that makes a sequence continuous (needed
    before interpolating, differencing or reading off angular velocities). `axis` indexes the
    leading (time) dimensions of q (..., 4) and must not be the last one.
    """
    q = _as_float(q)
    _check_last(q, 4, "q")
    axis = axis % q.ndim
    if axis == q.ndim - 1:
        raise ValueError("axis must be a time axis of q (..., 4), not the quaternion axis")
    qt = np.moveaxis(q, axis, 0)  # (T, ..., 4)
    if qt.shape[0] < 2:
        return q.copy()
    flips = np.sum(qt[1:] * qt[:-1], axis=-1) < 0  # (T-1, ...)
    parity = np.concatenate([np.zeros_like(flips[:1]), np.cumsum(flips, axis=0) % 2 == 1], 0)
    out = np.where(parity[..., None], -qt, qt)
    return np.moveaxis(out, 0, axis)


def qslerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical linear interpolation from a (t=0) to b (t=1) along the shorter arc.

    a, b: (..., 4) unit quaternions; t broadcasts against a[..., 0]. Falls back to normalised
    linear interpolation when a and b are nearly equal.
    """
    a, b = _as_float(a), _as_float(b)
    _check_last(a, 4, "a")
    _check_last(b, 4, "b")
    t = np.asarray(t, dtype=a.dtype)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    near = dot > 1.0 - 1e-9
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    safe = np.where(near, 1.0, np.sin(theta))
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return qnormalize(wa * a + wb * b)

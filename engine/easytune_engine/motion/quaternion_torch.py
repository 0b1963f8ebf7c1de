"""Quaternion helpers for torch tensors: the same functions and conventions as `quaternion.py`.

(w, x, y, z) order, tensors of shape (..., 4), Hamilton product, active rotations. Everything is
differentiable and works on any device and floating dtype; nothing here calls `torch.no_grad`.
Branches (opposite vectors in `qbetween`, near-equal inputs in `qslerp`) use `torch.where` with
safe denominators so gradients stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-12


def _as_float(x: Tensor) -> Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _check_last(x: Tensor, size: int, name: str) -> None:
    if x.dim() == 0 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got {tuple(x.shape)}")


def _cross(a: Tensor, b: Tensor) -> Tensor:
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)


def qnormalize(q: Tensor) -> Tensor:
    """Scale quaternions (..., 4) to unit norm."""
    q = _as_float(q)
    _check_last(q, 4, "q")
    return q / q.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def qmul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b (apply b first, then a): (..., 4) x (..., 4) -> (..., 4)."""
    a, b = _as_float(a), _as_float(b)
    _check_last(a, 4, "a")
    _check_last(b, 4, "b")
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def qinv(q: Tensor) -> Tensor:
    """Inverse quaternion (..., 4): the conjugate divided by the squared norm."""
    q = _as_float(q)
    _check_last(q, 4, "q")
    conj = torch.cat([q[..., :1], -q[..., 1:]], dim=-1)
    return conj / (q * q).sum(dim=-1, keepdim=True).clamp_min(_EPS)


def qrot(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); shapes broadcast."""
    q, v = _as_float(q), _as_float(v)
    _check_last(q, 4, "q")
    _check_last(v, 3, "v")
    w, u = q[..., :1], q[..., 1:]
    uv = _cross(u, v)
    return v + 2.0 * (w * uv + _cross(u, uv))


def qbetween(u: Tensor, v: Tensor) -> Tensor:
    """Shortest-arc unit quaternion taking direction u to direction v: (..., 3) -> (..., 4).

    For (nearly) opposite vectors we rotate 180 degrees about an axis perpendicular to u.
    """
    u, v = _as_float(u), _as_float(v)
    _check_last(u, 3, "u")
    _check_last(v, 3, "v")
    u, v = torch.broadcast_tensors(u, v)
    norms = ((u * u).sum(-1, keepdim=True) * (v * v).sum(-1, keepdim=True)).sqrt()
    w = norms + (u * v).sum(-1, keepdim=True)  # (..., 1)
    q = torch.cat([w, _cross(u, v)], dim=-1)  # (..., 4)
    opposite = w <= 1e-7 * norms.clamp_min(_EPS)  # (..., 1)
    # 180-degree fallback about u x (basis axis least aligned with u)
    basis = torch.nn.functional.one_hot(u.abs().argmin(dim=-1), 3).to(u.dtype)  # (..., 3)
    axis = _cross(u, basis)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    fallback = torch.cat([torch.zeros_like(w), axis], dim=-1)
    return qnormalize(torch.where(opposite, fallback, q))


def qfrom_axis_angle(axis: Tensor, angle: Tensor | float) -> Tensor:
    """Unit quaternion for a rotation of `angle` radians about `axis` (..., 3) -> (..., 4)."""
    axis = _as_float(axis)
    _check_last(axis, 3, "axis")
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    half = 0.5 * torch.as_tensor(angle, dtype=axis.dtype, device=axis.device)[..., None]
    return torch.cat([torch.cos(half) * torch.ones_like(axis[..., :1]), torch.sin(half) * axis], -1)


def qto_matrix(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) from quaternions (..., 4) (normalised first)."""
    q = qnormalize(q)
    w, x, y, z = q.unbind(-1)
    m = torch.stack(
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
        dim=-1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)  # (..., 3, 3)


def qfrom_matrix(m: Tensor) -> Tensor:
    """Unit quaternions (..., 4), w >= 0, from rotation matrices (..., 3, 3) (Shepperd's method)."""
    m = _as_float(m)
    if m.dim() < 2 or m.shape[-2:] != (3, 3):
        raise ValueError(f"m must have shape (..., 3, 3), got {tuple(m.shape)}")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * (w^2, x^2, y^2, z^2)
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    candidates = torch.stack(
        [
            torch.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], -1),
        ],
        dim=-2,
    )  # (..., 4, 4): row k is 4 * q * q_k
    best = sq.argmax(dim=-1)  # (...,)
    index = best[..., None, None].expand(*best.shape, 1, 4)  # (..., 1, 4)
    q = qnormalize(candidates.gather(-2, index).squeeze(-2))
    return torch.where(q[..., :1] < 0, -q, q)


def qyaw(angle: Tensor | float) -> Tensor:
    """Rotation about +Y by `angle` radians (...,) -> (..., 4); positive turns +Z towards +X."""
    half = 0.5 * _as_float(torch.as_tensor(angle))
    zero = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zero, torch.sin(half), zero], dim=-1)


def qcontinuity(q: Tensor, axis: int = 0) -> Tensor:
    """Flip signs so consecutive quaternions along `axis` have a non-negative dot product.

    `axis` indexes the leading (time) dimensions of q (..., 4) and must not be the last one.
    The sign choice carries no gradient; the result is differentiable in q.
    """
    q = _as_float(q)
    _check_last(q, 4, "q")
    axis = axis % q.dim()
    if axis == q.dim() - 1:
        raise ValueError("axis must be a time axis of q (..., 4), not the quaternion axis")
    qt = q.movedim(axis, 0)  # (T, ..., 4)
    if qt.shape[0] < 2:
        return q.clone()
    with torch.no_grad():
        flips = ((qt[1:] * qt[:-1]).sum(-1) < 0).long()  # (T-1, ...)
        parity = torch.cat([torch.zeros_like(flips[:1]), flips.cumsum(0) % 2], 0)
        sign = (1 - 2 * parity).to(q.dtype)[..., None]  # (T, ..., 1)
    return (qt * sign).movedim(0, axis)


def qslerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical linear interpolation from a (t=0) to b (t=1) along the shorter arc.

    a, b: (..., 4) unit quaternions; t broadcasts against a[..., 0]. Falls back to normalised
    linear interpolation when a and b are nearly equal.
    """
    a, b = _as_float(a), _as_float(b)
    _check_last(a, 4, "a")
    _check_last(b, 4, "b")
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)[..., None]
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)
    dot = dot.abs()
    near = dot > 1.0 - 1e-9
    theta = torch.acos(torch.where(near, torch.zeros_like(dot), dot))  # safe acos gradient
    sin_theta = torch.where(near, torch.ones_like(theta), torch.sin(theta))
    wa = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * theta) / sin_theta)
    wb = torch.where(near, t, torch.sin(t * theta) / sin_theta)
    return qnormalize(wa * a + wb * b)

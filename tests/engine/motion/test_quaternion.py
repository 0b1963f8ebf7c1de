"""Quaternion helpers: numpy maths against rotation matrices, torch against numpy, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easytune_engine.motion import quaternion as qn
from easytune_engine.motion import quaternion_torch as qt


def _random_quats(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return qn.qnormalize(rng.normal(size=(*shape, 4)))


def test_qmul_matches_matrix_product() -> None:
    rng = np.random.default_rng(0)
    a, b = _random_quats(rng, 50), _random_quats(rng, 50)
    np.testing.assert_allclose(
        qn.qto_matrix(qn.qmul(a, b)), qn.qto_matrix(a) @ qn.qto_matrix(b), atol=1e-12
    )


def test_qrot_matches_matrix_and_qinv_undoes_it() -> None:
    rng = np.random.default_rng(1)
    q, v = _random_quats(rng, 7, 5), rng.normal(size=(7, 5, 3))
    rotated = qn.qrot(q, v)
    np.testing.assert_allclose(rotated, (qn.qto_matrix(q) @ v[..., None])[..., 0], atol=1e-12)
    np.testing.assert_allclose(qn.qrot(qn.qinv(q), rotated), v, atol=1e-12)
    np.testing.assert_allclose(
        qn.qmul(q, qn.qinv(q)), np.tile([1.0, 0, 0, 0], (7, 5, 1)), atol=1e-12
    )


def test_qrot_broadcasts_one_quaternion_over_many_vectors() -> None:
    q = qn.qyaw(np.pi / 2)
    v = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # +90 degrees about +Y turns +Z to +X and +X to -Z.
    np.testing.assert_allclose(qn.qrot(q, v), [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], atol=1e-12)


@pytest.mark.parametrize(
    ("u", "v"),
    [
        ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        ([0.3, -2.0, 0.5], [1.0, 1.0, 1.0]),
        ([0.0, 0.0, 1.0], [0.0, 0.0, -1.0]),  # opposite
        ([0.0, -1.0, 0.0], [0.0, 1.0, 0.0]),  # opposite
        ([1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]),  # opposite, different lengths
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]),  # parallel
    ],
)
def test_qbetween_takes_u_to_v(u: list[float], v: list[float]) -> None:
    u_arr, v_arr = np.array(u), np.array(v)
    q = qn.qbetween(u_arr, v_arr)
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-12)
    expected = v_arr / np.linalg.norm(v_arr) * np.linalg.norm(u_arr)
    np.testing.assert_allclose(qn.qrot(q, u_arr), expected, atol=1e-9)


def test_qbetween_is_the_shortest_arc() -> None:
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    q = qn.qbetween(u, v)
    angle = 2 * np.arccos(np.clip(np.abs(q[:, 0]), 0, 1))
    cos_uv = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    np.testing.assert_allclose(angle, np.arccos(cos_uv), atol=1e-7)


def test_axis_angle_yaw_and_matrix_round_trip() -> None:
    np.testing.assert_allclose(
        qn.qfrom_axis_angle(np.array([0.0, 2.0, 0.0]), 0.7), qn.qyaw(0.7), atol=1e-12
    )
    rng = np.random.default_rng(3)
    q = _random_quats(rng, 200)
    q[:4] = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]]  # 180-degree turns, identity
    back = qn.qfrom_matrix(qn.qto_matrix(q))
    np.testing.assert_allclose(np.abs(np.sum(back * q, -1)), 1.0, atol=1e-12)  # same up to sign
    assert np.all(back[:, 0] >= 0)


def test_qcontinuity_removes_sign_flips() -> None:
    angles = np.linspace(0, 6 * np.pi, 100)  # several full turns: raw yaw quaternions wrap sign
    q = qn.qyaw(angles)
    flipped = q * np.where(np.arange(100) % 3 == 0, -1.0, 1.0)[:, None]
    fixed = qn.qcontinuity(flipped)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], -1) >= 0)
    np.testing.assert_allclose(np.abs(fixed), np.abs(q), atol=1e-12)
    # another time axis
    batched = np.stack([flipped, flipped], axis=1)  # (T, 2, 4)
    np.testing.assert_allclose(qn.qcontinuity(batched, axis=0)[:, 1], fixed, atol=1e-12)


def test_qslerp_endpoints_midpoint_and_short_path() -> None:
    a, b = qn.qyaw(0.2), qn.qyaw(1.0)
    np.testing.assert_allclose(qn.qslerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(qn.qslerp(a, b, 1.0), b, atol=1e-12)
    np.testing.assert_allclose(qn.qslerp(a, b, 0.5), qn.qyaw(0.6), atol=1e-12)
    np.testing.assert_allclose(qn.qslerp(a, -b, 0.5), qn.qyaw(0.6), atol=1e-12)
    np.testing.assert_allclose(qn.qslerp(a, a, 0.3), a, atol=1e-12)
    ts = np.linspace(0, 1, 5)
    assert qn.qslerp(a, b, ts).shape == (5, 4)


def test_bad_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        qn.qmul(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        qn.qrot(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        qn.qfrom_matrix(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        qt.qmul(torch.zeros(3), torch.zeros(4))


def test_torch_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    a, b = _random_quats(rng, 6, 4), _random_quats(rng, 6, 4)
    v = rng.normal(size=(6, 4, 3))
    u = rng.normal(size=(6, 4, 3))
    u[0, 0], v[0, 0] = [0.0, 0.0, 1.0], [0.0, 0.0, -2.0]  # opposite pair
    ta, tb, tv, tu = (torch.from_numpy(x) for x in (a, b, v, u))
    pairs = [
        (qt.qnormalize(ta * 3), qn.qnormalize(a * 3)),
        (qt.qmul(ta, tb), qn.qmul(a, b)),
        (qt.qinv(ta), qn.qinv(a)),
        (qt.qrot(ta, tv), qn.qrot(a, v)),
        (qt.qbetween(tu, tv), qn.qbetween(u, v)),
        (qt.qfrom_axis_angle(tv, tu[..., 0]), qn.qfrom_axis_angle(v, u[..., 0])),
        (qt.qto_matrix(ta), qn.qto_matrix(a)),
        (qt.qfrom_matrix(qt.qto_matrix(ta)), qn.qfrom_matrix(qn.qto_matrix(a))),
        (qt.qyaw(tu[..., 0]), qn.qyaw(u[..., 0])),
        (qt.qcontinuity(ta, axis=0), qn.qcontinuity(a, axis=0)),
        (qt.qcontinuity(ta, axis=1), qn.qcontinuity(a, axis=1)),
        (qt.qslerp(ta, tb, 0.3), qn.qslerp(a, b, 0.3)),
    ]
    for got, expected in pairs:
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_torch_functions_are_differentiable() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    checks = [
        (lambda a, b: qt.qmul(qt.qnormalize(a), qt.qinv(b)), (a, b)),
        (lambda a, v: qt.qrot(qt.qnormalize(a), v), (a, v)),
        (lambda v: qt.qbetween(v, v.flip(0) + 0.1), (v,)),
        (lambda a: qt.qfrom_matrix(qt.qto_matrix(a)), (a,)),
        (lambda a, b: qt.qslerp(qt.qnormalize(a), qt.qnormalize(b), 0.4), (a, b)),
        (lambda a: qt.qcontinuity(a), (a,)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs)


def test_torch_keeps_dtype_and_device() -> None:
    q = qt.qyaw(torch.tensor([0.1, 0.2], dtype=torch.float32))
    assert q.dtype == torch.float32
    assert qt.qrot(q, torch.ones(2, 3)).dtype == torch.float32

"""Moments, the delta-method relative lift and CUPED, against hand computations and numpy.

References: the relative lift's delta-method variance Var(B/A) ~ Var B / A^2 + B^2 Var A / A^4
(Deng, Knoblich and Lu 2018, KDD, eq. 2); the CUPED coefficient cov(x, y) / var(x) and its
variance reduction (Deng, Xu, Kohavi and Walker 2013, WSDM, section 3.2), checked against numpy's
``np.cov`` on explicit data.
"""

from __future__ import annotations

import numpy as np
import pytest

from origin.experiments.stats.moments import Moments, cuped_theta, effect


def _moments(y: list[float], x: list[float]) -> Moments:
    ya, xa = np.array(y), np.array(x)
    return Moments(
        len(y), float(ya.sum()), float((ya * ya).sum()), float(xa.sum()),
        float((xa * xa).sum()), float((xa * ya).sum()),
    )  # fmt: skip


Y_A, X_A = [0.0, 10.0, 0.0, 25.0, 5.0, 0.0], [0.0, 3.0, 1.0, 6.0, 2.0, 0.0]
Y_B, X_B = [12.0, 0.0, 30.0, 8.0, 0.0, 4.0, 0.0], [4.0, 0.0, 7.0, 2.0, 1.0, 1.0, 0.0]


def test_moments_match_numpy() -> None:
    m = _moments(Y_A, X_A)
    assert m.mean == pytest.approx(np.mean(Y_A))
    assert m.variance == pytest.approx(np.var(Y_A, ddof=1))
    assert m.variance_x == pytest.approx(np.var(X_A, ddof=1))
    assert m.covariance == pytest.approx(np.cov(X_A, Y_A, ddof=1)[0, 1])


def test_binary_moments() -> None:
    m = Moments.binary(30, 100)
    assert m.mean == 0.3
    assert m.variance == pytest.approx(0.3 * 0.7 * 100 / 99)
    with pytest.raises(ValueError, match="successes"):
        Moments.binary(101, 100)


def test_relative_lift_delta_method_without_cuped() -> None:
    a, b = _moments(Y_A, X_A), _moments(Y_B, X_B)
    e = effect(a, b)
    va, vb = np.var(Y_A, ddof=1) / len(Y_A), np.var(Y_B, ddof=1) / len(Y_B)
    ma, mb = np.mean(Y_A), np.mean(Y_B)
    assert e.difference == pytest.approx(mb - ma)
    assert e.difference_variance == pytest.approx(va + vb)
    assert e.relative == pytest.approx(mb / ma - 1)
    assert e.relative_variance == pytest.approx(vb / ma**2 + mb**2 * va / ma**4)
    assert e.variance_reduction == 0.0


def test_cuped_theta_and_adjusted_difference() -> None:
    a, b = _moments(Y_A, X_A), _moments(Y_B, X_B)
    cov = np.cov(X_A, Y_A, ddof=1)[0, 1] * 5 + np.cov(X_B, Y_B, ddof=1)[0, 1] * 6
    var = np.var(X_A, ddof=1) * 5 + np.var(X_B, ddof=1) * 6
    theta = cuped_theta([a, b])
    assert theta == pytest.approx(cov / var)
    e = effect(a, b, theta)
    adj_a = np.array(Y_A) - theta * np.array(X_A)
    adj_b = np.array(Y_B) - theta * np.array(X_B)
    assert e.difference == pytest.approx(adj_b.mean() - adj_a.mean())
    assert e.difference_variance == pytest.approx(
        np.var(adj_a, ddof=1) / len(Y_A) + np.var(adj_b, ddof=1) / len(Y_B)
    )
    assert 0.0 < e.variance_reduction < 1.0


def test_no_covariate_variation_means_no_adjustment() -> None:
    assert cuped_theta([Moments.binary(3, 10), Moments.binary(5, 10)]) == 0.0

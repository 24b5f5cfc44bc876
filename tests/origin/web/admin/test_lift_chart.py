"""The lift chart: a band per challenger, a zero line, clipped axes, escaped text."""

from __future__ import annotations

from origin.web.admin.lift_chart import LiftPoint, LiftSeries, lift_chart


def test_nothing_to_draw() -> None:
    assert lift_chart([], "purchase") == ""
    assert lift_chart([LiftSeries("b", 1, ())], "purchase") == ""


def test_bands_narrow_around_the_estimate_and_the_zero_line_is_drawn() -> None:
    points = (
        LiftPoint("20261101", 0.3, -5.0, 6.0),  # a first day's huge interval is clipped
        LiftPoint("20261102", 0.2, -0.1, 0.5),
        LiftPoint("20261103", 0.15, 0.02, 0.28),
    )
    svg = lift_chart([LiftSeries("b<script>", 1, points)], "add_to_cart")
    assert svg.startswith('<svg class="chart lift-chart"')
    assert svg.count('class="band series-1"') == 1
    assert 'class="zeroline"' in svg
    assert "+100 %" in svg  # the axis stops at +-100 %
    assert "&lt;script&gt;" in svg
    assert "<script>" not in svg
    assert "add to cart" in svg
    assert "Nov 3: +15.0 % (always valid +2.0 % … +28.0 %)" in svg

"""The form's sample-size and duration estimate, in words, and the slot traffic it is read from."""

from __future__ import annotations

import time
from dataclasses import replace

from fragments.experiments import Experiment, Variant
from origin.events.moment_table import MomentTable
from origin.experiments.traffic import SlotTraffic, slot_traffic
from origin.web.admin import form as forms
from origin.web.admin.planning import plan_view

FIELDS = replace(forms.blank(), key="p", name="P", slots=("home-hero",), mde="10")


def test_a_reachable_effect_gives_visitors_and_days() -> None:
    plan = plan_view(FIELDS, SlotTraffic(4000, 0.05, ("hero",)))
    assert plan.reachable is True
    assert "days at 4,000 visitors a day" in plan.message
    assert "5.00 % baseline purchase" in plan.detail
    assert "fixed-horizon" in plan.detail


def test_an_unreachable_effect_is_a_warning() -> None:
    plan = plan_view(replace(FIELDS, mde="1"), SlotTraffic(300, 0.05, ("hero",)))
    assert plan.reachable is False
    assert plan.message.startswith("Cannot reach +1.0 % within 56 days")


def test_without_traffic_or_inputs_it_says_what_is_missing() -> None:
    assert "No recent traffic" in plan_view(FIELDS, SlotTraffic(0, None, ())).message
    assert (
        "minimum detectable effect"
        in plan_view(replace(FIELDS, mde=""), SlotTraffic(1, 0.1, ())).message
    )
    assert "Choose a slot" in plan_view(replace(FIELDS, slots=()), SlotTraffic(1, 0.1, ())).message


def test_slot_traffic_reads_recent_days_and_control_baseline() -> None:
    today = time.strftime("%Y%m%d", time.gmtime())
    old = "20200101"
    table = MomentTable(
        {
            ("n", "control", today): 600.0, ("n", "b", today): 400.0,
            ("n", "control", old): 9999.0, ("y:purchase", "control", today): 30.0,
            ("y:purchase", "control", old): 470.0,
        }
    )  # fmt: skip
    hero = Experiment("hero", "Hero", "running", ("home-hero",), (Variant("control", "C", 0.5),))
    other = Experiment("x", "X", "running", ("cart-upsell",), (Variant("control", "C", 1.0),))
    traffic = slot_traffic([(hero, table), (other, table)], ["home-hero"], "purchase", time.time())
    assert traffic.daily_visitors == 1000.0  # one recent day; the old day is not recent
    assert traffic.baseline == 500 / (600 + 9999)
    assert traffic.sources == ("hero",)

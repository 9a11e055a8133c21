"""Erlang C (M/M/n) estimates for the chat queue, against values worked by hand and published tables."""

from __future__ import annotations

import math

import pytest

from app.services.queueing import erlang_c, estimate_wait, eta_for_position, expected_wait


def _erlang_c_via_erlang_b(load: float, agents: int) -> float:
    """Independent route: the Erlang B recursion, then C = n·B / (n − A·(1 − B))."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return agents * b / (agents - load * (1 - b))


def test_two_erlangs_on_three_agents_wait_with_probability_four_ninths():
    # A²... by hand: A³/3! · 3/(3−2) = 4; 1 + 2 + 2 = 5; C = 4 / (5 + 4).
    assert erlang_c(2, 3) == pytest.approx(4 / 9)


@pytest.mark.parametrize(("load", "agents", "published"), [
    (10, 11, 0.6821), (10, 12, 0.4494), (10, 13, 0.2853), (10, 14, 0.1741),
])
def test_textbook_call_centre_values(load, agents, published):
    # 100 calls per half hour, 3 minutes each: 10 erlangs (the standard worked example).
    assert erlang_c(load, agents) == pytest.approx(published, abs=5e-5)


@pytest.mark.parametrize(("load", "agents"), [(0.5, 1), (3.7, 5), (45.2, 50), (180.0, 200)])
def test_agrees_with_the_erlang_b_route_and_handles_many_agents(load, agents):
    assert erlang_c(load, agents) == pytest.approx(_erlang_c_via_erlang_b(load, agents), rel=1e-9)


def test_edges_no_load_overload_and_no_agents():
    assert erlang_c(0, 3) == 0.0
    assert erlang_c(3, 3) == 1.0 and erlang_c(5, 3) == 1.0
    assert erlang_c(1, 0) == 1.0
    with pytest.raises(ValueError):
        erlang_c(-1, 3)


def test_expected_wait_of_the_textbook_example_is_about_two_minutes():
    wait = expected_wait(arrival_rate=100 / 1800, handle_seconds=180, agents=11)
    assert wait == pytest.approx(0.6821 * 180, rel=1e-3)  # C / (nμ − λ) = C · 3 min here
    assert expected_wait(1, 10, 5) == math.inf  # 10 erlangs on 5 agents never catches up
    assert expected_wait(0.1, 10, 0) == math.inf
    with pytest.raises(ValueError):
        expected_wait(0.1, 0, 3)


def test_eta_grows_with_the_position_and_shrinks_with_agents():
    assert eta_for_position(1, 240, 2) == 120
    assert eta_for_position(3, 240, 2) == 360
    assert eta_for_position(3, 240, 4) == 180
    assert eta_for_position(1, 240, 0) == math.inf
    with pytest.raises(ValueError):
        eta_for_position(0, 240, 2)


def test_the_wait_told_to_a_visitor_is_whole_seconds_or_unknown():
    assert estimate_wait(1, 300, 2) == 150
    assert estimate_wait(2, 100, 3) == 67  # 66.67 s rounds to the nearest second
    assert estimate_wait(1, 300, 0) is None
    with pytest.raises(ValueError):
        estimate_wait(0, 300, 2)

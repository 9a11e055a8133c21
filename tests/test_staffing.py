"""The staffing planner's queueing models (排班测算): Erlang C against published worked examples and
the exact factorial formula, Erlang A against a brute-force birth–death chain, the smallest
staffing that meets a target, and ``GET /api/v1/staffing``."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from pytest import approx

from app.services.errors import ValidationFailed
from app.services.staffing import (
    MAX_SERVERS,
    Demand,
    Target,
    erlang_a_performance,
    erlang_a_plan,
    erlang_b,
    erlang_c,
    erlang_c_performance,
    erlang_c_plan,
    read_interval,
)

# --- Erlang C: published worked examples -----------------------------------------------------------


def test_the_call_centre_helper_worked_example_needs_14_agents():
    # Call Centre Helper, "Erlang C Formula – Made Simple with an Easy Worked Example": 100 contacts
    # in 30 minutes, 180 s handle time, 80 % answered within 20 s: 10 erlangs. 14 agents give
    # P(wait) 17.41 %, service level 88.84 %, ASA 7.84 s, occupancy 71.43 %; 13 give 79.56 %.
    demand = Demand(arrivals_per_hour=200, aht_seconds=180)
    plan = erlang_c_plan(demand, Target(0.8, 20))
    assert plan.agents == 14
    assert plan.performance.wait_probability == approx(0.1741, abs=5e-5)
    assert plan.performance.service_level == approx(0.8884, abs=5e-5)
    assert plan.performance.avg_wait_seconds == approx(7.84, abs=5e-3)
    assert plan.performance.occupancy == approx(0.7143, abs=5e-5)
    assert erlang_c_performance(demand, 13, 20).service_level == approx(0.7956, abs=5e-5)


def test_the_westbay_worked_example_of_360_calls_per_half_hour():
    # Westbay Engineers, "The Erlang-C formula": 360 calls per half hour of 4 minutes on 55 agents,
    # target 15 s: 48 erlangs, occupancy 87.27 %, P(wait) 23.87 %, ASA 8.18 s, service level 84.59 %.
    performance = erlang_c_performance(Demand(720, 240), 55, 15)
    assert performance.occupancy == approx(0.8727, abs=5e-5)
    assert performance.wait_probability == approx(0.2387, abs=5e-5)
    assert performance.avg_wait_seconds == approx(8.18, abs=5e-3)
    assert performance.service_level == approx(0.8459, abs=5e-5)
    assert erlang_c_plan(Demand(720, 240), Target(0.8, 15)).agents == 55  # 54 agents answer 79.3 % in 15 s
    assert erlang_c_plan(Demand(720, 240), Target(0.8, 20)).agents == 54  # and 81.7 % in 20 s


# --- Erlang C: an independent implementation -----------------------------------------------------------


def _exact_erlang_c(load: Fraction, servers: int) -> Fraction:
    """The textbook formula with factorials, in exact fractions."""
    below = sum(load**k / math.factorial(k) for k in range(servers))
    top = load**servers / math.factorial(servers) * Fraction(servers) / (servers - load)
    return top / (below + top)


@pytest.mark.parametrize("load", ["0.5", "1", "2.5", "7", "12.3", "30"])
def test_erlang_c_agrees_with_the_exact_factorial_formula_over_a_grid(load):
    exact_load = Fraction(load)
    for servers in range(math.floor(exact_load) + 1, math.floor(exact_load) + 12):
        exact = _exact_erlang_c(exact_load, servers)
        assert erlang_c(float(exact_load), servers) == approx(float(exact), rel=1e-12)
        aht = 240.0
        demand = Demand(float(exact_load) * 3600 / aht, aht)
        performance = erlang_c_performance(demand, servers, 30)
        assert performance.avg_wait_seconds == approx(float(exact * Fraction(aht) / (servers - exact_load)), rel=1e-9)
        assert performance.service_level == approx(
            1 - float(exact) * math.exp(-float(servers - exact_load) * 30 / aht), rel=1e-9)


def test_hundreds_of_agents_neither_overflow_nor_lose_precision():
    # Aⁿ/n! for 700 erlangs passes 10^300: the factorial formula in floats overflows, the Erlang B
    # recursion does not. The reference sums the same terms in 60-digit decimals.
    with localcontext() as context:
        context.prec = 60
        load, term, below = Decimal(700), Decimal(1), Decimal(0)
        for k in range(750):
            below += term
            term = term * load / (k + 1)
        top = term * 750 / (750 - load)
        exact = top / (below + top)
    assert erlang_c(700.0, 750) == approx(float(exact), rel=1e-10)
    demand = Demand(8400, 300)  # 700 erlangs
    plan = erlang_c_plan(demand, Target(0.8, 20))
    assert plan.agents > 700 and plan.performance.service_level >= 0.8
    assert erlang_c_performance(demand, plan.agents - 1, 20).service_level < 0.8


@pytest.mark.parametrize(("arrivals", "aht", "level", "seconds", "per_agent"), [
    (200, 180, 0.8, 20, 1), (13, 600, 0.9, 60, 1), (120, 420, 0.95, 10, 3), (1, 300, 0.5, 0, 1),
    (2500, 90, 0.8, 15, 2), (0.4, 3600, 0.8, 20, 1),
])
def test_the_erlang_c_plan_is_the_smallest_staffing_that_meets_the_target(arrivals, aht, level, seconds,
                                                                          per_agent):
    demand = Demand(arrivals, aht)
    plan = erlang_c_plan(demand, Target(level, seconds), per_agent)
    assert plan.performance.servers == plan.agents * per_agent
    assert plan.performance.service_level >= level
    assert erlang_c_performance(demand, (plan.agents - 1) * per_agent, seconds).service_level < level


def test_no_arrivals_need_no_agent_and_an_overloaded_queue_grows_without_end():
    plan = erlang_c_plan(Demand(0, 300), Target(0.8, 20))
    assert (plan.agents, plan.performance.service_level, plan.performance.avg_wait_seconds,
            plan.performance.occupancy) == (0, 1.0, 0.0, 0.0)
    overloaded = erlang_c_performance(Demand(120, 300), 10, 20)  # 10 erlangs on 10 servers
    assert (overloaded.wait_probability, overloaded.service_level, overloaded.avg_wait_seconds,
            overloaded.occupancy) == (1.0, 0.0, None, 1.0)
    assert erlang_c_performance(Demand(120, 300), 0, 20).occupancy is None


def test_a_target_beyond_the_largest_staffing_is_refused_at_once():
    with pytest.raises(ValidationFailed) as refused:
        erlang_c_plan(Demand(10_000, 86_400), Target(0.8, 20))  # 240,000 erlangs
    assert str(MAX_SERVERS) in refused.value.errors["_"][0]


# --- Erlang A: a brute-force chain ------------------------------------------------------------------


def _stationary_by_elimination(rate: float, mu: float, theta: float, servers: int, size: int) -> list[float]:
    """π of the M/M/n+M chain cut at *size* states, by solving πQ = 0 with Σπ = 1 (Gaussian
    elimination with partial pivoting on the generator, not the product form)."""
    generator = [[0.0] * size for _ in range(size)]
    for k in range(size):
        if k + 1 < size:
            generator[k][k + 1] = rate
        if k > 0:
            generator[k][k - 1] = min(k, servers) * mu + max(k - servers, 0) * theta
        generator[k][k] = -sum(generator[k])
    rows = [[generator[j][i] for j in range(size)] + [0.0] for i in range(size)]
    rows[-1] = [1.0] * size + [1.0]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            if factor:
                for c in range(col, size + 1):
                    rows[r][c] -= factor * rows[col][c]
    pi = [0.0] * size
    for r in range(size - 1, -1, -1):
        pi[r] = (rows[r][size] - sum(rows[r][c] * pi[c] for c in range(r + 1, size))) / rows[r][r]
    return pi


def _answered_by_uniformisation(servers: int, mu: float, theta: float, seconds: float, positions: int) -> list[float]:
    """P(answered within *seconds*) of a visitor arriving at position 1 … *positions* of the queue:
    the tagged visitor moves up at rate nμ + (p − 1)θ and leaves at rate θ; the chain is
    uniformised at rate Λ and its jumps counted by a Poisson variable of mean Λt."""
    big = servers * mu + positions * theta
    reached = [1.0] + [0.0] * positions  # P(at the agent within m jumps), from each position
    weight = math.exp(-big * seconds)
    total = [weight * value for value in reached]
    m = 0
    while m < big * seconds + 12 * math.sqrt(big * seconds) + 30:
        m += 1
        reached = [1.0] + [((servers * mu + (p - 1) * theta) * reached[p - 1]
                            + (big - servers * mu - p * theta) * reached[p]) / big for p in range(1, positions + 1)]
        weight *= big * seconds / m
        total = [t + weight * value for t, value in zip(total, reached, strict=True)]
    return total[1:]


def _brute_force(arrivals: float, aht: float, patience: float, servers: int, seconds: float) -> dict:
    rate, mu, theta = arrivals / 3600, 1 / aht, 1 / patience
    size = servers + 90
    pi = _stationary_by_elimination(rate, mu, theta, servers, size)
    queue = sum((k - servers) * pi[k] for k in range(servers + 1, size))
    answered = _answered_by_uniformisation(servers, mu, theta, seconds, size - servers) if seconds else [0.0] * size
    level = sum(pi[:servers]) + sum(pi[servers + p] * answered[p] for p in range(size - servers)) if servers else 0.0
    return {"wait": sum(pi[servers:]), "abandon": theta * queue / rate, "mean_wait": queue / rate, "level": level}


@pytest.mark.parametrize(("arrivals", "aht", "patience", "servers", "seconds"), [
    (200, 180, 60, 8, 20), (200, 180, 60, 10, 20), (200, 180, 60, 12, 20), (200, 180, 60, 14, 20),
    (30, 600, 120, 2, 45), (30, 600, 120, 4, 45), (30, 600, 120, 6, 0), (90, 240, 30, 1, 10),
    (90, 240, 300, 0, 10), (400, 60, 45, 5, 30),
])
def test_erlang_a_agrees_with_a_brute_force_chain(arrivals, aht, patience, servers, seconds):
    performance = erlang_a_performance(Demand(arrivals, aht, patience), servers, seconds)
    expected = _brute_force(arrivals, aht, patience, servers, seconds)
    assert performance.wait_probability == approx(expected["wait"], abs=1e-9)
    assert performance.abandon_probability == approx(expected["abandon"], abs=1e-9)
    assert performance.avg_wait_seconds == approx(expected["mean_wait"], rel=1e-7, abs=1e-9)
    assert performance.service_level == approx(expected["level"], abs=1e-9)


def test_erlang_a_waits_as_garnett_mandelbaum_and_reiman_give_it():
    # P(wait) = 𝒜·E / (1 + (𝒜 − 1)·E), E Erlang B, 𝒜 = 1 + Σ_j Π_{i≤j} (λ/θ) / (nμ/θ + i); and
    # P(abandon | wait) = 1/(ρ𝒜) + 1 − 1/ρ with ρ = λ/(nμ).
    arrivals, aht, patience, servers = 200, 180, 60, 10
    rate, mu, theta = arrivals / 3600, 1 / aht, 1 / patience
    series, term, j = 1.0, 1.0, 0
    while term > 1e-18:
        j += 1
        term *= (rate / theta) / (servers * mu / theta + j)
        series += term
    blocking = erlang_b(rate * aht, servers)
    wait = series * blocking / (1 + (series - 1) * blocking)
    rho = rate / (servers * mu)
    performance = erlang_a_performance(Demand(arrivals, aht, patience), servers, 20)
    assert performance.wait_probability == approx(wait, rel=1e-10)
    assert performance.abandon_probability == approx(wait * (1 / (rho * series) + 1 - 1 / rho), rel=1e-9)


def test_erlang_a_with_endless_patience_is_erlang_c():
    demand = Demand(200, 180)
    patient = erlang_a_performance(Demand(200, 180, 86_400), 14, 20)
    plain = erlang_c_performance(demand, 14, 20)
    assert patient.service_level == approx(plain.service_level, abs=5e-4)
    assert patient.wait_probability == approx(plain.wait_probability, abs=5e-4)
    assert patient.abandon_probability < 1e-3


@pytest.mark.parametrize(("arrivals", "aht", "patience", "level", "seconds", "per_agent"), [
    (200, 180, 60, 0.8, 20, 1), (200, 180, 5, 0.8, 20, 1), (30, 600, 120, 0.9, 45, 1),
    (500, 300, 90, 0.8, 30, 4), (1, 300, 600, 0.5, 0, 1),
])
def test_the_erlang_a_plan_is_the_smallest_staffing_that_meets_the_target(arrivals, aht, patience, level,
                                                                          seconds, per_agent):
    demand = Demand(arrivals, aht, patience)
    plan = erlang_a_plan(demand, Target(level, seconds), per_agent)
    assert plan.performance.service_level >= level
    assert erlang_a_performance(demand, (plan.agents - 1) * per_agent, seconds).service_level < level


def test_visitors_who_leave_thin_the_queue_so_fewer_agents_meet_the_target_here():
    # Erlang C's 14 agents for 200 chats an hour of 180 s (80 % within 20 s): with visitors leaving
    # after a mean 60 s, 12 answer 80 % within 20 s; after 5 s, 11; with a day's patience, 14 again.
    target = Target(0.8, 20)
    assert erlang_c_plan(Demand(200, 180), target).agents == 14
    assert [erlang_a_plan(Demand(200, 180, patience), target).agents for patience in (5, 60, 86_400)] == [11, 12, 14]


# --- input ----------------------------------------------------------------------------------------


GOOD = {"arrival_rate_per_hour": "200", "aht_seconds": "180", "target_level": "0.8", "target_seconds": "20"}


def test_an_interval_is_read_from_query_arguments():
    interval = read_interval({**GOOD, "patience_seconds": "60", "chats_per_agent": "3"})
    assert interval.demand == Demand(200.0, 180.0, 60.0)
    assert interval.target == Target(0.8, 20.0)
    assert interval.chats_per_agent == 3


@pytest.mark.parametrize(("changes", "field"), [
    ({"arrival_rate_per_hour": None}, "arrival_rate_per_hour"),
    ({"arrival_rate_per_hour": "-1"}, "arrival_rate_per_hour"),
    ({"arrival_rate_per_hour": "10001"}, "arrival_rate_per_hour"),
    ({"arrival_rate_per_hour": "NaN"}, "arrival_rate_per_hour"),
    ({"aht_seconds": "0"}, "aht_seconds"),
    ({"aht_seconds": "1e3"}, "aht_seconds"),
    ({"aht_seconds": "inf"}, "aht_seconds"),
    ({"target_level": "1"}, "target_level"),
    ({"target_level": "0"}, "target_level"),
    ({"target_level": "80%"}, "target_level"),
    ({"target_seconds": "3601"}, "target_seconds"),
    ({"target_seconds": "-5"}, "target_seconds"),
    ({"patience_seconds": "0"}, "patience_seconds"),
    ({"patience_seconds": "86400", "arrival_rate_per_hour": "10000"}, "patience_seconds"),  # too long a chain
    ({"chats_per_agent": "0"}, "chats_per_agent"),
    ({"chats_per_agent": "1.5"}, "chats_per_agent"),
    ({"chats_per_agent": "21"}, "chats_per_agent"),
])
def test_bad_input_is_refused_naming_the_field(changes, field):
    args = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(ValidationFailed) as refused:
        read_interval(args)
    assert list(refused.value.errors) == [field]


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValidationFailed) as refused:
        read_interval({"aht_seconds": "x", "target_level": "2"})
    assert set(refused.value.errors) == {"arrival_rate_per_hour", "aht_seconds", "target_level", "target_seconds"}


# --- the API ------------------------------------------------------------------------------------------


def test_the_api_answers_the_fewest_agents_of_one_interval(app, api_token):
    response = app.test_client().get("/api/v1/staffing", query_string=GOOD, headers=api_token("manager"))
    assert response.status_code == 200
    assert response.json == {"agents": 14, "service_level": approx(0.888350, abs=1e-6),
                             "avg_wait_seconds": approx(7.836, abs=1e-3), "occupancy": approx(0.714286, abs=1e-6)}
    assert all(isinstance(response.json[k], int | float) for k in response.json)


def test_the_api_adds_erlang_a_when_given_a_patience(app, api_token):
    response = app.test_client().get("/api/v1/staffing", query_string={**GOOD, "patience_seconds": "60"},
                          headers=api_token("admin"))
    assert response.status_code == 200
    plan = erlang_a_plan(Demand(200, 180, 60), Target(0.8, 20))
    assert response.json["agents"] == 14
    assert response.json["erlang_a"] == {
        "agents": plan.agents, "service_level": approx(plan.performance.service_level, abs=1e-6),
        "avg_wait_seconds": approx(plan.performance.avg_wait_seconds, abs=1e-3),
        "occupancy": approx(plan.performance.occupancy, abs=1e-6),
        "wait_probability": approx(plan.performance.wait_probability, abs=1e-6),
        "abandon_probability": approx(plan.performance.abandon_probability, abs=1e-6)}


@pytest.mark.parametrize(("query", "field"), [
    ({**GOOD, "target_level": "1.5"}, "target_level"),
    ({**GOOD, "aht_seconds": "abc"}, "aht_seconds"),
    ({k: v for k, v in GOOD.items() if k != "target_seconds"}, "target_seconds"),
    ({**GOOD, "arrival_rate_per_hour": "10000", "aht_seconds": "86400"}, "_"),  # 240,000 erlangs
])
def test_the_api_refuses_bad_or_impossible_input_with_422(app, api_token, query, field):
    response = app.test_client().get("/api/v1/staffing", query_string=query, headers=api_token("manager"))
    assert response.status_code == 422
    assert field in response.json["errors"]
    assert response.json["message"]


def test_only_managers_and_admins_may_ask(app, api_token):
    client = app.test_client()
    assert client.get("/api/v1/staffing", query_string=GOOD).status_code == 401
    for role in ("accountant", "reviewer", "agent"):
        assert client.get("/api/v1/staffing", query_string=GOOD, headers=api_token(role)).status_code == 403


def test_the_api_is_in_the_openapi_document(app, api_token):
    spec = app.test_client().get("/api/v1/_openapi", headers=api_token("admin")).json
    operation = spec["paths"]["/api/v1/staffing"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"arrival_rate_per_hour", "aht_seconds", "target_level", "target_seconds", "patience_seconds",
                     "chats_per_agent"}
    assert {"200", "401", "403", "422"} <= set(operation["responses"])

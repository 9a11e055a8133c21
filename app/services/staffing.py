"""The staffing planner's queueing models (排班测算, 排队论): how many agents one interval needs.

Visitors arrive at rate λ (a Poisson stream; the planner takes arrivals per hour), an agent's chat
takes an exponential handle time of mean h seconds (μ = 1/h), and each agent serves
``chats_per_agent`` chats at once, each one a server of the queue (as the queue's own wait
estimate counts chat slots, ``app.services.queueing``). The offered load is A = λ·h erlangs.

Erlang C (M/M/n, nobody gives up):

- the probability of waiting C(n, A) comes from the Erlang B recursion
  B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)), then C = n·B / (n − A·(1 − B)): no power or factorial,
  so thousands of servers neither overflow nor lose precision; C = 1 when n ≤ A (the queue grows);
- service level SL(t) = 1 − C·e^(−(n − A)·t/h): the share answered within t seconds;
- mean wait (ASA, over every arrival) C·h / (n − A); occupancy A / n.

Erlang A (M/M/n+M, Palm's queue): a waiting visitor also leaves after an exponential patience
of mean 1/θ seconds. The number in the system is a birth–death chain (births λ; deaths
min(k, n)·μ + max(k − n, 0)·θ), summed in logarithms and cut where its tail is below 1e-18 of
the whole. By PASTA an arrival finds state k with probability π_k:

- P(wait) = Σ_{k≥n} π_k; with E[Q] = Σ_{k>n} (k − n)·π_k the mean queue, P(abandon) = θ·E[Q] / λ
  and the mean wait of every arrival (until answered or gone) E[Q] / λ (Little's law);
- occupancy: the answered load λ·(1 − P(abandon))·h over n;
- service level: the share of *all* arrivals answered within t (one who leaves is not answered).
  An arrival at position p (p − 1 ahead of it) moves up at rate n·μ + (p − 1)·θ, so its wait until
  answered, were it patient, has density K·e^(−nμ·v)·(1 − e^(−θv))^(p−1) (exponentials of rates
  nμ, nμ + θ, …: equally spaced). Surviving its own patience to be answered by t then has
  probability s/(s + p) · I_x(p, s + 1) with s = nμ/θ, x = 1 − e^(−θt) and I the regularised
  incomplete beta function, summed here as a negative binomial tail.

These agree with Garnett, Mandelbaum and Reiman (2002), "Designing a call center with impatient
customers": P(wait) = 𝒜·E / (1 + (𝒜 − 1)·E) with E Erlang B and 𝒜 = 1 + Σ_j (λ/θ)^j / Π_{i≤j} (nμ/θ + i).

The smallest number of agents meeting a target (share ``level`` answered within ``seconds``) is
searched upwards (Erlang C: one recursion step per server) or by bisection (Erlang A, whose
service level grows with n and which needs at least level·A servers). Inputs are bounded so that
no value makes the work long: ``MAX_SERVERS`` servers, ``MAX_ARRIVALS_PER_HOUR``,
``MAX_QUEUE_SCALE`` arrivals within one mean patience (the chain's length).

Errors: ``ValidationFailed`` naming the field for input out of its range, and ``"_"`` when the
target cannot be met with ``MAX_SERVERS`` servers or abandonment is too large to compute.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from app.services.errors import ValidationFailed

MAX_SERVERS = 10_000
MAX_ARRIVALS_PER_HOUR = 10_000
MAX_AHT_SECONDS = 86_400
MAX_TARGET_SECONDS = 3_600
MAX_PATIENCE_SECONDS = 86_400
MAX_CHATS_PER_AGENT = 20
MAX_QUEUE_SCALE = 20_000  # λ/θ: visitors arriving within one mean patience; the chain's length scales with it
_LOG_NEGLIGIBLE = math.log(1e-18)  # the chain's tail is cut below this share of its largest term
_NUMBER = re.compile(r"^\d{1,12}(\.\d{1,12})?$")


@dataclass(frozen=True)
class Demand:
    """One interval's work: arrivals per hour, mean handle time and (for Erlang A) mean patience."""

    arrivals_per_hour: float
    aht_seconds: float
    patience_seconds: float | None = None

    @property
    def rate(self) -> float:
        """Arrivals per second (λ)."""
        return self.arrivals_per_hour / 3600

    @property
    def load(self) -> float:
        """Offered load in erlangs (A = λ·h)."""
        return self.rate * self.aht_seconds


@dataclass(frozen=True)
class Target:
    """The service level asked for: a share ``level`` (0 < level < 1) answered within ``seconds``."""

    level: float
    seconds: float


@dataclass(frozen=True)
class Performance:
    """What *servers* chat slots give: ``avg_wait_seconds`` is None when the queue grows without
    end (Erlang C with n ≤ A), ``occupancy`` None when there is work but no server."""

    servers: int
    wait_probability: float
    service_level: float
    avg_wait_seconds: float | None
    occupancy: float | None
    abandon_probability: float = 0.0


@dataclass(frozen=True)
class Plan:
    """The smallest number of agents meeting a target, and how they perform."""

    agents: int
    performance: Performance


@dataclass(frozen=True)
class Interval:
    """A request of the planner: one interval's demand, the target and the chats per agent."""

    demand: Demand
    target: Target
    chats_per_agent: int = 1


# --- Erlang C -------------------------------------------------------------------------------------


def erlang_b(load: float, servers: int) -> float:
    """Erlang B: the share of arrivals that would find all *servers* busy with no queue (by the
    recursion, stable for any number of servers). Raises ``ValueError`` for a negative load or
    number of servers."""
    if load < 0 or servers < 0:
        raise ValueError("load and servers must not be negative")
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def _erlang_c_from_b(load: float, servers: int, b: float) -> float:
    return servers * b / (servers - load * (1 - b))


def erlang_c(load: float, servers: int) -> float:
    """Erlang C: the probability that an arrival waits, with offered *load* (erlangs) on *servers*;
    1 when ``servers <= load`` (no steady state: everyone waits), 0 without load. Raises
    ``ValueError`` for a negative load."""
    if load < 0:
        raise ValueError("load must not be negative")
    if load == 0:
        return 0.0
    if servers <= load:
        return 1.0
    return _erlang_c_from_b(load, servers, erlang_b(load, servers))


def _c_performance(demand: Demand, servers: int, seconds: float, wait: float) -> Performance:
    load = demand.load
    level = 1 - wait * math.exp(-(servers - load) * seconds / demand.aht_seconds)
    return Performance(servers, wait, level, wait * demand.aht_seconds / (servers - load), load / servers)


def erlang_c_performance(demand: Demand, servers: int, seconds: float) -> Performance:
    """Erlang C with *servers* chat slots: P(wait), the share answered within *seconds*, the mean
    wait and the occupancy. With ``servers <= load`` everyone waits and the wait grows without end
    (service level 0, wait None, occupancy 1, or None without servers)."""
    if demand.arrivals_per_hour == 0:
        return Performance(servers, 0.0, 1.0, 0.0, 0.0)
    if servers <= demand.load:
        return Performance(servers, 1.0, 0.0, None, 1.0 if servers else None)
    return _c_performance(demand, servers, seconds, erlang_c(demand.load, servers))


def _impossible() -> ValidationFailed:
    return ValidationFailed({"_": [str(_l("Even %(n)d chat slots cannot meet this target: lower the target or "
                                          "the load.", n=MAX_SERVERS))]})


def erlang_c_plan(demand: Demand, target: Target, chats_per_agent: int = 1) -> Plan:
    """The fewest agents (each with *chats_per_agent* slots) whose Erlang C service level reaches
    *target*; no agent for no arrivals. Raises ``ValidationFailed`` when more than ``MAX_SERVERS``
    slots would be needed or the demand is out of bounds (``check_demand``)."""
    _check(demand, target, chats_per_agent)
    if demand.arrivals_per_hour == 0:
        return Plan(0, erlang_c_performance(demand, 0, target.seconds))
    load = demand.load
    if load >= MAX_SERVERS:
        raise _impossible()
    b, servers, agents = 1.0, 0, 0
    while True:
        agents += 1
        if agents * chats_per_agent > MAX_SERVERS:
            raise _impossible()
        while servers < agents * chats_per_agent:  # Erlang B one server further each step
            servers += 1
            b = load * b / (servers + load * b)
        if servers > load:
            performance = _c_performance(demand, servers, target.seconds, _erlang_c_from_b(load, servers, b))
            if performance.service_level >= target.level:
                return Plan(agents, performance)


# --- Erlang A -------------------------------------------------------------------------------------


def _chain(demand: Demand, servers: int) -> list[float]:
    """π_0 … π_K of the M/M/n+M chain, cut where the rest is negligible."""
    rate, mu, theta = demand.rate, 1 / demand.aht_seconds, 1 / demand.patience_seconds
    logs = [0.0]
    for k in range(1, servers + 1):
        logs.append(logs[-1] + math.log(rate / (k * mu)))
    peak = max(logs)
    j = 0
    while True:
        j += 1
        death = servers * mu + j * theta
        term = logs[-1] + math.log(rate / death)
        # Past the mode the terms fall by at least rate/death each: the rest is below term/(1 − rate/death).
        if death > rate and term - math.log1p(-rate / death) - peak < _LOG_NEGLIGIBLE:
            break
        logs.append(term)
        peak = max(peak, term)
    weights = [math.exp(value - peak) for value in logs]
    total = math.fsum(weights)
    return [w / total for w in weights]


def _answered_within(servers: int, demand: Demand, seconds: float, waiting: list[float]) -> float:
    """Σ_p π_{n+p−1} · P(an arrival at position p is answered within *seconds*); *waiting* is
    π_n, π_{n+1}, …"""
    if servers == 0 or seconds == 0:
        return 0.0
    mu, theta = 1 / demand.aht_seconds, 1 / demand.patience_seconds
    s = servers * mu / theta
    b = s + 1
    log_x = math.log(-math.expm1(-theta * seconds))
    log_t = -(servers * mu + theta) * seconds  # log of the negative binomial's first term, (1 − x)^b
    below = 0.0  # Σ_{j<p} T_j: I_x(p, b) = 1 − below
    parts = []
    for p, share in enumerate(waiting, start=1):
        below += math.exp(log_t)
        parts.append(share * s / (s + p) * max(0.0, 1 - below))
        log_t += log_x + math.log((p + b - 1) / p)
    return math.fsum(parts)


def erlang_a_performance(demand: Demand, servers: int, seconds: float) -> Performance:
    """Erlang A with *servers* chat slots and the demand's patience: P(wait), P(abandon), the share
    of all arrivals answered within *seconds*, the mean wait of every arrival and the occupancy
    by the answered chats. Raises ``ValueError`` without a patience."""
    if demand.patience_seconds is None or demand.patience_seconds <= 0:
        raise ValueError("Erlang A needs a patience above 0")
    rate = demand.rate
    if rate == 0:
        return Performance(servers, 0.0, 1.0, 0.0, 0.0)
    pi = _chain(demand, servers)
    waiting = pi[servers:]
    queue = math.fsum(j * share for j, share in enumerate(waiting))
    wait_probability = min(1.0, math.fsum(waiting))
    abandon = min(1.0, queue / demand.patience_seconds / rate)
    level = math.fsum(pi[:servers]) + _answered_within(servers, demand, seconds, waiting)
    occupancy = demand.load * (1 - abandon) / servers if servers else None
    return Performance(servers, wait_probability, min(1.0, level), queue / rate, occupancy, abandon)


def erlang_a_plan(demand: Demand, target: Target, chats_per_agent: int = 1) -> Plan:
    """The fewest agents (each with *chats_per_agent* slots) whose Erlang A service level reaches
    *target*; no agent for no arrivals. Raises ``ValidationFailed`` when more than ``MAX_SERVERS``
    slots would be needed or the demand is out of bounds, and ``ValueError`` without a patience."""
    _check(demand, target, chats_per_agent)
    if demand.arrivals_per_hour == 0:
        return Plan(0, erlang_a_performance(demand, 0, target.seconds))

    def performance(agents: int) -> Performance:
        return erlang_a_performance(demand, agents * chats_per_agent, target.seconds)

    # Answered chats cannot outrun the slots (n·μ), so fewer than level·A slots always fall short.
    failing = max(0, math.ceil(target.level * demand.load / chats_per_agent) - 1)
    most = MAX_SERVERS // chats_per_agent
    step, passing = 1, None
    while passing is None:
        candidate = min(failing + step, most)
        found = performance(candidate)
        if found.service_level >= target.level:
            passing = (candidate, found)
        elif candidate == most:
            raise _impossible()
        else:
            failing, step = candidate, step * 2
    agents, best = passing
    while agents - failing > 1:
        middle = (failing + agents) // 2
        found = performance(middle)
        if found.service_level >= target.level:
            agents, best = middle, found
        else:
            failing = middle
    return Plan(agents, best)


# --- input ------------------------------------------------------------------------------------------


def _number(args: Mapping[str, object], name: str, errors: dict[str, list[str]], *, required: bool = True,
            default: float | None = None) -> float | None:
    raw = args.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required and default is None:
            errors[name] = [str(_l("This field is required."))]
        return default
    text = str(raw).strip()
    if not _NUMBER.match(text):
        errors[name] = [str(_l("A number written with digits and at most one decimal point, such as 12 or 0.8."))]
        return None
    return float(text)


def _within(value: float | None, name: str, errors: dict[str, list[str]], low: float, high: float, *,
            low_open: bool = False, high_open: bool = False) -> None:
    if value is None or name in errors:
        return
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        if low_open and high_open:
            message = _l("More than %(low)s and less than %(high)s.", low=_plain(low), high=_plain(high))
        elif low_open:
            message = _l("More than %(low)s and at most %(high)s.", low=_plain(low), high=_plain(high))
        else:
            message = _l("From %(low)s to %(high)s.", low=_plain(low), high=_plain(high))
        errors[name] = [str(message)]


def _plain(number: float) -> str:
    return f"{number:g}" if number < 1e6 else str(int(number))


def _demand_errors(arrivals: float | None, aht: float | None, patience: float | None,
                   errors: dict[str, list[str]]) -> None:
    _within(arrivals, "arrival_rate_per_hour", errors, 0, MAX_ARRIVALS_PER_HOUR)
    _within(aht, "aht_seconds", errors, 0, MAX_AHT_SECONDS, low_open=True)
    _within(patience, "patience_seconds", errors, 0, MAX_PATIENCE_SECONDS, low_open=True)
    if patience is not None and arrivals is not None and not errors.keys() & {
            "arrival_rate_per_hour", "patience_seconds"} and arrivals / 3600 * patience > MAX_QUEUE_SCALE:
        errors["patience_seconds"] = [str(_l(
            "Too many arrivals within one patience time to compute abandonment (at most %(n)d): give a "
            "shorter patience or fewer arrivals.", n=MAX_QUEUE_SCALE))]


def check_demand(demand: Demand) -> None:
    """The bounds of a demand: 0 to ``MAX_ARRIVALS_PER_HOUR`` arrivals per hour, 0 < AHT ≤
    ``MAX_AHT_SECONDS``, 0 < patience ≤ ``MAX_PATIENCE_SECONDS`` and at most ``MAX_QUEUE_SCALE``
    arrivals within one patience. Raises ``ValidationFailed`` naming the fields as the API does."""
    errors: dict[str, list[str]] = {}
    _demand_errors(demand.arrivals_per_hour, demand.aht_seconds, demand.patience_seconds, errors)
    if errors:
        raise ValidationFailed(errors)


def _check(demand: Demand, target: Target, chats_per_agent: int) -> None:
    check_demand(demand)
    errors: dict[str, list[str]] = {}
    _within(target.level, "target_level", errors, 0, 1, low_open=True, high_open=True)
    _within(target.seconds, "target_seconds", errors, 0, MAX_TARGET_SECONDS)
    _within(chats_per_agent, "chats_per_agent", errors, 1, MAX_CHATS_PER_AGENT)
    if errors:
        raise ValidationFailed(errors)


def read_target(args: Mapping[str, object], errors: dict[str, list[str]], default_level: float | None = None,
                default_seconds: float | None = None) -> tuple[Target | None, int]:
    """The target and the chat slots of an agent from query arguments: ``target_level`` (above 0,
    below 1), ``target_seconds`` (0 to ``MAX_TARGET_SECONDS``), optional ``chats_per_agent`` (1 to
    ``MAX_CHATS_PER_AGENT``, default 1), each missing one taken from its default when given.
    Adds each field's error to *errors*; the target is None when one is not valid."""
    level = _number(args, "target_level", errors, default=default_level)
    seconds = _number(args, "target_seconds", errors, default=default_seconds)
    per_agent = _number(args, "chats_per_agent", errors, required=False)
    _within(level, "target_level", errors, 0, 1, low_open=True, high_open=True)
    _within(seconds, "target_seconds", errors, 0, MAX_TARGET_SECONDS)
    if per_agent is not None and "chats_per_agent" not in errors and (
            per_agent != int(per_agent) or not 1 <= per_agent <= MAX_CHATS_PER_AGENT):
        errors["chats_per_agent"] = [str(_l("A whole number from %(low)d to %(high)d.", low=1,
                                            high=MAX_CHATS_PER_AGENT))]
    if level is None or seconds is None or errors.keys() & {"target_level", "target_seconds", "chats_per_agent"}:
        return None, 1
    return Target(level, seconds), int(per_agent or 1)


def read_interval(args: Mapping[str, object]) -> Interval:
    """An interval from query arguments: ``arrival_rate_per_hour`` (0 to ``MAX_ARRIVALS_PER_HOUR``),
    ``aht_seconds`` (above 0), optional ``patience_seconds`` (above 0, see ``check_demand``) and
    the target (``read_target``; ``target_level`` and ``target_seconds`` required). Numbers are
    digits with at most one decimal point. Raises ``ValidationFailed`` naming every field missing
    or out of range."""
    errors: dict[str, list[str]] = {}
    arrivals = _number(args, "arrival_rate_per_hour", errors)
    aht = _number(args, "aht_seconds", errors)
    patience = _number(args, "patience_seconds", errors, required=False)
    _demand_errors(arrivals, aht, patience, errors)
    target, per_agent = read_target(args, errors)
    if errors:
        raise ValidationFailed(errors)
    return Interval(Demand(arrivals, aht, patience), target, per_agent)


def plan_json(plan: Plan, abandonment: bool = False) -> dict:
    """A plan as the API answers it: numbers as JSON numbers (probabilities to 6 decimals, seconds
    to 3); with *abandonment*, also P(wait) and P(abandon)."""
    p = plan.performance
    out = {"agents": plan.agents, "service_level": round(p.service_level, 6),
           "avg_wait_seconds": round(p.avg_wait_seconds, 3) if p.avg_wait_seconds is not None else None,
           "occupancy": round(p.occupancy, 6) if p.occupancy is not None else None}
    if abandonment:
        out.update(wait_probability=round(p.wait_probability, 6), abandon_probability=round(p.abandon_probability, 6))
    return out


def plan_interval(interval: Interval) -> dict:
    """The API's answer for one interval: the Erlang C plan, and under ``erlang_a`` the Erlang A
    plan when the interval has a patience. Raises ``ValidationFailed`` when a target cannot be met."""
    demand, target, per_agent = interval.demand, interval.target, interval.chats_per_agent
    out = plan_json(erlang_c_plan(demand, target, per_agent))
    if demand.patience_seconds is not None:
        out["erlang_a"] = plan_json(erlang_a_plan(demand, target, per_agent), abandonment=True)
    return out

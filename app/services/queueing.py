"""Waiting-time estimates for the chat queue: the M/M/n queue (Erlang C).

Visitors arrive at rate λ (per second), an agent handles a chat in a mean time h (seconds, so
μ = 1/h), and n agents are online. The offered load is A = λ·h erlangs.

- ``erlang_c(A, n)``: the probability that an arriving visitor has to wait,
  C(n, A) = (Aⁿ/n! · n/(n−A)) / (Σₖ₌₀ⁿ⁻¹ Aᵏ/k! + Aⁿ/n! · n/(n−A)); 1 when A ≥ n (the queue grows);
  computed as the staffing planner computes it (``app.services.staffing``).
- ``expected_wait(λ, h, n)``: the mean wait of an arriving visitor, C(n, A) / (n·μ − λ).
- ``eta_for_position(k, h, n)``: the mean wait of the visitor who is k-th in the queue while all
  n agents are busy: chats end at rate n·μ, so k of them take k/(n·μ) = k·h/n on average.

Errors: ``ValueError`` for negative rates or handle times, or a position below 1.
"""

from __future__ import annotations

import math

from app.services import staffing


def erlang_c(load: float, agents: int) -> float:
    """Probability of waiting in an M/M/n queue with offered *load* (erlangs) and *agents* servers
    (1 without agents): ``staffing.erlang_c``, by the Erlang B recursion, so that no factorial or
    power overflows however many agents."""
    if load < 0:
        raise ValueError("load must not be negative")
    if agents <= 0:
        return 1.0
    return staffing.erlang_c(load, agents)


def expected_wait(arrival_rate: float, handle_seconds: float, agents: int) -> float:
    """Mean wait in seconds of an arriving visitor (``math.inf`` when the agents cannot keep up)."""
    if arrival_rate < 0 or handle_seconds <= 0:
        raise ValueError("arrival rate must be ≥ 0 and handle time > 0")
    if agents <= 0:
        return math.inf
    load = arrival_rate * handle_seconds
    if load >= agents:
        return math.inf
    service_rate = 1 / handle_seconds
    return erlang_c(load, agents) / (agents * service_rate - arrival_rate)


def eta_for_position(position: int, handle_seconds: float, agents: int) -> float:
    """Mean wait in seconds of the visitor at *position* (1 = next) when every agent is busy."""
    if position < 1:
        raise ValueError("position starts at 1")
    if handle_seconds <= 0:
        raise ValueError("handle time must be > 0")
    if agents <= 0:
        return math.inf
    return position * handle_seconds / agents


def estimate_wait(position: int, handle_seconds: float, servers: int) -> int | None:
    """The wait in whole seconds told to the visitor at *position* of the chat queue, with
    *servers* chat slots online (each agent's ``max_chats``: one slot is one server of the M/M/n
    queue); None when nobody is online (the wait is unknown). Raises ``ValueError`` like
    ``eta_for_position``."""
    eta = eta_for_position(position, handle_seconds, servers)
    return None if math.isinf(eta) else round(eta)

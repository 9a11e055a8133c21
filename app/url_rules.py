"""URL rules whose URL builders are made when a URL is first built from them.

For each URL rule, Werkzeug writes and compiles two small Python functions that build its URL
(with and without extra query arguments) as soon as the rule is added. The desk has some 370
rules (every Flask-AppBuilder screen and API registers a dozen), so that is a tenth of a second of
every start, for builders most of which a process never calls: ``url_for`` names a few dozen
endpoints. ``LazyBuilderRule`` (the application's ``url_rule_class``, Flask's hook for the rule
class) makes each builder with Werkzeug's own code on its first call instead; matching requests
does not use the builders. The URLs built are the same (tests/test_startup.py builds every
rule's URL both ways).

This overrides ``Rule._compile_builder``, a method Werkzeug does not document: should a later
Werkzeug no longer call it, the rules simply compile their builders eagerly again, and
tests/test_startup.py says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule


class LazyBuilderRule(Rule):
    """A Werkzeug ``Rule`` that compiles each of its two URL builders on the builder's first call."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        attribute = "_build_unknown" if append_unknown else "_build"

        def build_on_first_use(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            builder = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, attribute, builder)  # later calls go straight to it
            return builder(*args, **kwargs)

        return build_on_first_use

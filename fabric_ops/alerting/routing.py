"""The route tree (Alertmanager semantics): which routes, receivers and timings an alert's labels select."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

from fabric_ops.errors import ConfigurationError

from .matchers import match_all
from .models import Route

# Alertmanager's defaults: wait 30 s for a group to fill, 5 min between updates, re-send every 4 h.
DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0


@dataclass(frozen=True)
class RouteSettings:
    """A route's effective settings once inheritance from its ancestors is applied."""

    route_id: int
    receiver_id: int | None
    escalation_id: int | None
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float


class RouteTree:
    """An in-memory copy of the Route table (small; reloaded per engine call so edits apply at once)."""

    def __init__(self, routes: list[Route]):
        self.by_id = {r.pk: r for r in routes}
        self.children: dict[int | None, list[Route]] = defaultdict(list)
        for route in routes:
            self.children[route.parent_id].append(route)
        for siblings in self.children.values():
            siblings.sort(key=lambda r: (r.order, r.pk))
        roots = self.children.get(None, [])
        self.root = roots[0] if roots else None

    @classmethod
    def load(cls) -> RouteTree:
        return cls(list(Route.objects.all()))

    @staticmethod
    def _apply(base: RouteSettings | None, route: Route) -> RouteSettings:
        if base is None:
            base = RouteSettings(
                route.pk, None, None, (), DEFAULT_GROUP_WAIT_S, DEFAULT_GROUP_INTERVAL_S, DEFAULT_REPEAT_INTERVAL_S
            )
        return replace(
            base,
            route_id=route.pk,
            receiver_id=route.receiver_id or base.receiver_id,
            escalation_id=route.escalation_id or base.escalation_id,
            group_by=tuple(route.group_by) if route.group_by is not None else base.group_by,
            group_wait_s=route.group_wait_s if route.group_wait_s is not None else base.group_wait_s,
            group_interval_s=route.group_interval_s if route.group_interval_s is not None else base.group_interval_s,
            repeat_interval_s=(
                route.repeat_interval_s if route.repeat_interval_s is not None else base.repeat_interval_s
            ),
        )

    def settings_of(self, route_id: int) -> RouteSettings:
        """Effective settings of one route (walks up to the root)."""
        chain = []
        route = self.by_id.get(route_id)
        while route is not None:
            chain.append(route)
            route = self.by_id.get(route.parent_id) if route.parent_id else None
        settings = None
        for node in reversed(chain):
            settings = self._apply(settings, node)
        if settings is None:
            raise ConfigurationError(f"route {route_id} does not exist")
        return settings

    def match(self, labels: Mapping[str, str]) -> list[RouteSettings]:
        """The routes an alert goes to: the deepest matching nodes; siblings after a match are tried only when
        it has ``continue_matching``. The root always matches (it is the catch-all)."""
        if self.root is None:
            return []

        def visit(route: Route, inherited: RouteSettings | None) -> list[RouteSettings]:
            here = self._apply(inherited, route)
            found: list[RouteSettings] = []
            for child in self.children.get(route.pk, []):
                if match_all(child.matchers, labels):
                    found.extend(visit(child, here))
                    if not child.continue_matching:
                        break
            return found or [here]

        return visit(self.root, None)

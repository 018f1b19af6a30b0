"""Limit/offset pagination: scripts page through thousands of switches; the UI asks for what it shows.

The count is what made a list cost more than its page at scale: an exact ``COUNT(*)`` reads every matching row
(133k interfaces: ~23 ms of PostgreSQL per request, growing with the table) even when the page holds 100. So:

* one row more than the page is fetched, so ``next`` is known without counting;
* on the last page the count is ``offset + rows``: no count query (small lists never count);
* otherwise the count stops at :attr:`Pagination.count_cap` rows (``SELECT COUNT(*) FROM (... LIMIT cap+1)``):
  exact up to the cap, ``null`` above it (filter, e.g. ``?fabric=`` or ``?device=``, to get an exact figure).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 5000
    count_cap = 10000

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None, count_queryset: QuerySet | None = None
    ) -> list | None:
        """``count_queryset``: what to count when ``queryset`` is a ``values_list()`` over joins (fastlist): the
        model queryset counts without them."""
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_more = len(rows) > self.limit
        rows = rows[: self.limit]
        if not self.has_more and (rows or self.offset == 0):
            self.count: int | None = self.offset + len(rows)
        else:
            self.count = bounded_count(queryset if count_queryset is None else count_queryset, self.count_cap)
        return rows

    def get_next_link(self) -> str | None:
        if not self.has_more:
            return None
        url = replace_query_param(self.request.build_absolute_uri(), self.limit_query_param, self.limit)
        return replace_query_param(url, self.offset_query_param, self.offset + self.limit)

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count"].update(
            nullable=True,
            description=f"Rows matching the filters; null when more than {self.count_cap} (not counted further).",
        )
        return answer


def bounded_count(queryset: QuerySet, cap: int) -> int | None:
    """``queryset.count()`` if it is at most ``cap``, else None, reading at most ``cap + 1`` rows."""
    found = queryset.order_by()[: cap + 1].count()
    return found if found <= cap else None

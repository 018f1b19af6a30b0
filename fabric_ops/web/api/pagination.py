"""Limit/offset pagination: scripts page through thousands of switches; the UI asks for what it shows."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 5000

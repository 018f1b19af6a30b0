"""Audit changes made in the Django admin. Its LogEntry keeps a message, not before/after values, so every
registered ModelAdmin is given :class:`AuditedAdminMixin` when the app starts.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin

from .audit import Source, diff, record, snapshot

logger = logging.getLogger(__name__)


class AuditedAdminMixin:
    """Writes an audit row for each save and delete done through the admin."""

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        before = None
        if change and obj.pk is not None:
            old = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = snapshot(old) if old is not None else None
        super().save_model(request, obj, form, change)
        changes = diff(before, snapshot(obj))
        if changes or not change:
            record(request.user, "update" if change else "create", obj, changes, request, source=Source.ADMIN)

    def delete_model(self, request: Any, obj: Any) -> None:
        before, pk, text = snapshot(obj), obj.pk, str(obj)
        super().delete_model(request, obj)
        record(request.user, "delete", obj, diff(before, None), request, source=Source.ADMIN, object_id=pk,
               object_repr=text)  # fmt: skip

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        rows = [(obj, obj.pk, str(obj), snapshot(obj)) for obj in queryset]
        super().delete_queryset(request, queryset)
        for obj, pk, text, before in rows:
            record(request.user, "delete", obj, diff(before, None), request, source=Source.ADMIN, object_id=pk,
                   object_repr=text)  # fmt: skip


def audit_registered_admins(site: admin.AdminSite = admin.site) -> None:
    """Replace every ModelAdmin registered on ``site`` by an audited subclass (idempotent)."""
    from rest_framework.authtoken.models import TokenProxy

    # The authtoken admin lists token keys: secrets are never rendered, tokens come from `drf_create_token`.
    if site.is_registered(TokenProxy):
        site.unregister(TokenProxy)
    for model, model_admin in list(site._registry.items()):
        cls = type(model_admin)
        if issubclass(cls, AuditedAdminMixin):
            continue
        audited = type(f"Audited{cls.__name__}", (AuditedAdminMixin, cls), {"__module__": cls.__module__})
        site._registry[model] = audited(model, site)
    logger.debug("admin audit enabled for %d models", len(site._registry))

"""Audit changes made in the Django admin. Its LogEntry keeps a message, not before/after values, so every
registered ModelAdmin is given :class:`AuditedAdminMixin` when the app starts.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import models

from .audit import MASK, Source, diff, record, snapshot

logger = logging.getLogger(__name__)


def full_snapshot(obj: models.Model) -> dict[str, Any]:
    """Field values plus many-to-many memberships (a user's groups, a channel's spans) as sorted ids."""
    data = snapshot(obj)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return data


class AuditedAdminMixin:
    """Writes an audit row for each save (fields and many-to-many, once both are saved) and delete in the admin."""

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        before = None
        if change and obj.pk is not None:
            old = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = full_snapshot(old) if old is not None else None
        request._fabric_ops_audit = (before, change)
        super().save_model(request, obj, form, change)

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before, change = getattr(request, "_fabric_ops_audit", (None, change))
        obj = form.instance
        changes = diff(before, full_snapshot(obj))
        if changes or not change:
            record(request.user, "update" if change else "create", obj, changes, request, source=Source.ADMIN)

    def delete_model(self, request: Any, obj: Any) -> None:
        before, pk, text = full_snapshot(obj), obj.pk, str(obj)
        super().delete_model(request, obj)
        record(request.user, "delete", obj, diff(before, None), request, source=Source.ADMIN, object_id=pk,
               object_repr=text)  # fmt: skip

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        rows = [(obj, obj.pk, str(obj), full_snapshot(obj)) for obj in queryset]
        super().delete_queryset(request, queryset)
        for obj, pk, text, before in rows:
            record(request.user, "delete", obj, diff(before, None), request, source=Source.ADMIN, object_id=pk,
                   object_repr=text)  # fmt: skip


class AuditedPasswordMixin:
    """The admin's change-password view saves the form itself, outside save_model: audit it too (masked)."""

    def user_change_password(self, request: Any, id: str, form_url: str = "") -> Any:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            record(request.user, "change-password", user, {"password": [MASK, MASK]}, request, source=Source.ADMIN)
        return response


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
        bases: tuple[type, ...] = (AuditedAdminMixin, cls)
        if hasattr(cls, "user_change_password"):
            bases = (AuditedPasswordMixin, *bases)
        audited = type(f"Audited{cls.__name__}", bases, {"__module__": cls.__module__})
        site._registry[model] = audited(model, site)
    logger.debug("admin audit enabled for %d models", len(site._registry))

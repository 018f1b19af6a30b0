"""Acknowledge / resolve: from a signed link in a notification, and from the API (token or session auth).

The signed link is the authorisation (whoever holds an unexpired link for a group may ack or resolve it, like
PagerDuty's e-mail links). GET only shows a confirmation page — mail scanners and chat unfurlers follow GET
links, so the change itself needs the POST of that page's button.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from . import engine
from .acknowledgement import acknowledge_group, record_audit
from .links import LinkError, read_token
from .models import AlertGroup

logger = logging.getLogger(__name__)

LINK = "link"  # the audit source of a signed link (fabric_ops.web AuditEntry.Source.LINK)


def _act(group_id: int, action: str, actor: str, by: Any, request: Any, source: str) -> AlertGroup:
    if action == "ack":  # the incidents behind the group's alerts are acknowledged with it (one notion of ack)
        return acknowledge_group(group_id, actor, by=by, source=source, request=request)
    return engine.resolve_group(group_id, actor)


def action_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        group_id, action = read_token(token)
    except LinkError as exc:
        return render(request, "alerting/action.html", {"error": str(exc)}, status=403)
    group = AlertGroup.objects.filter(pk=group_id).first()
    if group is None:
        return render(request, "alerting/action.html", {"error": "this alert group no longer exists"}, status=404)
    context: dict[str, Any] = {"group": group, "action": action, "alerts": group.alerts.all()}
    if request.method == "POST":
        who = request.user.get_username() if request.user.is_authenticated else "signed-link"
        actor = f"{who} (link)"
        by = request.user if request.user.is_authenticated else f"link:{who}"
        group = _act(group_id, action, actor, by, request, LINK)
        record_audit(by, f"alert-{action}", group, request, LINK)
        context.update(group=group, done=True)
    return render(request, "alerting/action.html", context)


class CanHandleAlerts(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(
            request.user and request.user.is_authenticated and request.user.has_perm("alerting.change_alertgroup")
        )


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertGroup
        fields = ["id", "group_labels", "state", "acknowledged_at", "acknowledged_by", "last_notified_at",
                  "escalation_step", "closed_at"]  # fmt: skip


def _api(action: str):
    @extend_schema(request=None, responses=GroupSerializer, operation_id=f"alerting_group_{action}")
    @api_view(["POST"])
    @permission_classes([CanHandleAlerts])
    def view(request: Request, pk: int) -> Response:
        if not AlertGroup.objects.filter(pk=pk).exists():
            return Response({"detail": f"alert group {pk} not found"}, status=404)
        group = _act(pk, action, request.user.get_username(), request.user, request, "api")
        record_audit(request.user, f"alert-{action}", group, request, "api")
        return Response(GroupSerializer(group).data)

    view.__name__ = f"api_{action}"
    return view


api_acknowledge = _api("ack")
api_resolve = _api("resolve")

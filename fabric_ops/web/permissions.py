"""Permission classes: Django model permissions for every viewset, named permissions for actions and APIViews.

Login is required everywhere (anonymous requests get 401). Permission checks run before any object lookup,
so a user without the right sees 403 whether or not the object exists (no existence leak).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also requires ``view_<model>`` to read, plus per-action permissions.

    A viewset may set ``action_permissions = {"approve": ["fabricconfig.approve_pushjob"]}``; for those actions
    the listed permissions are required instead of the method-based ones.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        action_perms = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if action_perms is not None:
            return request.user.has_perms(action_perms)
        return super().has_permission(request, view)


class NamedPermissions(BasePermission):
    """For views without a model: ``required_permissions`` (any method) and ``write_permissions`` (unsafe ones)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = list(getattr(view, "required_permissions", ()))
        if request.method not in SAFE_METHODS:
            needed += list(getattr(view, "write_permissions", ()))
        return user.has_perms(needed)

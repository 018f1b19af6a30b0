"""Permission classes: Django model permissions for every viewset, named permissions for actions and APIViews.

Login is required everywhere (anonymous requests get 401). Permission checks run before any object lookup,
so a user without the right sees 403 whether or not the object exists (no existence leak).

Each user's permission set is cached in the process for :data:`PERMISSION_CACHE_S` seconds (two queries per API
request before: the user's and their groups' permissions, ~25 % of a small list's cost). The token (or session) and
the user row, with ``is_active`` and ``is_superuser``, are still read on every request. A change to a user, a group,
a permission or their links clears the cache of the process that makes it at once (signals, again on commit);
other processes (other gunicorn workers, ``manage.py roles``) see it within the TTL. Keys are user ids, never shared.
Only reads use the cache: a write or an action (approve, push, inject, acknowledge) always reads the permissions
from the database, so a revoked operator can look for up to the TTL but never act on the network after revocation.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

# Seconds a user's permission set is reused by other requests of the same process; 0 turns the cache off.
PERMISSION_CACHE_S = float(os.environ.get("FABRIC_OPS_API_PERMISSION_CACHE_S", "5"))
_MAX_USERS = 4096  # beyond this many cached users the cache starts again (memory bound)
_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

# (user id, is_superuser) -> (expires, own, groups', all): ModelBackend's three per-request caches
_cache: dict[tuple[Any, bool], tuple[float, frozenset[str], frozenset[str], frozenset[str]]] = {}
_generation = 0  # bumped by every invalidation: a set read before it is not stored after it
_lock = threading.Lock()


def _now() -> float:
    return time.monotonic()


def load_permissions(request: Any) -> None:
    """Give the request's user ModelBackend's per-request permission caches from the process cache, or fill both.

    Reads only (safe methods): anything else is checked against the database. Only ModelBackend's caches are known,
    so nothing happens with other authentication backends.
    """
    user = request.user
    if PERMISSION_CACHE_S <= 0 or request.method not in SAFE_METHODS or hasattr(user, "_perm_cache"):
        return
    if list(settings.AUTHENTICATION_BACKENDS) != _BACKENDS:
        return
    if not user.is_active or user.is_anonymous:
        return  # ModelBackend answers "no permissions" for them without asking the database
    key = (user.pk, user.is_superuser)
    hit = _cache.get(key)
    if hit is not None and hit[0] > _now():
        # shared, read-only sets (nothing in Django mutates these caches; a frozenset would refuse it loudly)
        user._user_perm_cache, user._group_perm_cache, user._perm_cache = hit[1:]
        return
    generation = _generation
    ModelBackend().get_all_permissions(user)  # fills the user's, the groups' and the combined per-request caches
    with _lock:
        if generation != _generation:
            return  # invalidated while reading: this set may predate the change
        if len(_cache) >= _MAX_USERS:
            _cache.clear()
        own, groups, every = user._user_perm_cache, user._group_perm_cache, user._perm_cache
        _cache[key] = (_now() + PERMISSION_CACHE_S, frozenset(own), frozenset(groups), frozenset(every))


def clear_permission_cache(**_: Any) -> None:
    """Forget every cached permission set of this process (a signal receiver: any permission-related change)."""
    global _generation
    with _lock:
        _generation += 1
        _cache.clear()


def _changed(**kwargs: Any) -> None:
    if kwargs.get("signal") is post_save and kwargs.get("update_fields") == frozenset({"last_login"}):
        return  # every session login saves the user (update_last_login): no permission changed
    clear_permission_cache()
    # A request of this process may read the old rows until the change commits, and cache them: clear again then.
    transaction.on_commit(clear_permission_cache, using=kwargs.get("using"))


def connect_invalidation() -> None:
    """Clear the cache whenever users, groups, permissions or the links between them change (WebConfig.ready)."""
    user_model = get_user_model()
    for model in (user_model, Group, Permission):
        post_save.connect(_changed, sender=model, dispatch_uid=f"web.perm_cache.save.{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"web.perm_cache.delete.{model._meta.label}")
    for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"web.perm_cache.m2m.{through._meta.label}")


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
        load_permissions(request)
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
        load_permissions(request)
        needed = list(getattr(view, "required_permissions", ()))
        if request.method not in SAFE_METHODS:
            needed += list(getattr(view, "write_permissions", ()))
        return user.has_perms(needed)

"""Users and roles for admins (/api/users/), and who am I (/api/me/) so a UI can show only what one may do."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric_ops.web import audit, roles

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    """``password`` is write-only (validated by Django's validators); ``role`` is the one role group."""

    role = serializers.ChoiceField(choices=[(r, r) for r in roles.ROLES], allow_null=True, required=False)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "is_active", "role", "password",
                  "last_login", "date_joined"]  # fmt: skip
        read_only_fields = ["id", "last_login", "date_joined"]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["role"] = roles.role_of(instance)
        return data

    def validate_password(self, value: str) -> str:
        password_validation.validate_password(value, self.instance)
        return value

    def save(self, **kwargs: Any) -> Any:
        role = self.validated_data.pop("role", "__keep__")
        password = self.validated_data.pop("password", None)
        with transaction.atomic():
            user = super().save(**kwargs)
            if password:
                user.set_password(password)
                user.save(update_fields=["password"])
            if role is None:
                user.groups.remove(*user.groups.filter(name__in=roles.ROLES))
                user.is_staff = False
                user.save(update_fields=["is_staff"])
            elif role != "__keep__":
                roles.assign_role(user, role)
        return user


class UserViewSet(viewsets.ModelViewSet):
    """Admins only (``auth.*_user``). Deleting is allowed; deactivating (``is_active: false``) keeps the history."""

    queryset = User.objects.prefetch_related("groups").order_by("username")
    serializer_class = UserSerializer
    filterset_fields = ["username", "is_active"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _record(self, action: str, user: Any, before: dict[str, Any] | None, before_role: str | None) -> None:
        changes = audit.diff(before, audit.snapshot(user) if action != "delete" else None)
        after_role = roles.role_of(user) if action != "delete" else None
        if before_role != after_role:
            changes["role"] = [before_role, after_role]
        changes.pop("last_login", None)
        if changes or action != "update":
            audit.record(self.request.user, action, user, changes, self.request)

    def perform_create(self, serializer: Any) -> None:
        user = serializer.save()
        self._record("create", user, None, None)

    def perform_update(self, serializer: Any) -> None:
        before, before_role = audit.snapshot(serializer.instance), roles.role_of(serializer.instance)
        user = serializer.save()
        self._record("update", user, before, before_role)

    def perform_destroy(self, instance: Any) -> None:
        before, before_role, pk = audit.snapshot(instance), roles.role_of(instance), instance.pk
        instance.delete()
        instance.pk = pk
        self._record("delete", instance, before, before_role)


class MeView(APIView):
    """GET /api/me/: the caller's username, role and permissions (``app_label.codename``)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: inline_serializer("Me", {
            "username": serializers.CharField(),
            "role": serializers.CharField(allow_null=True),
            "permissions": serializers.ListField(child=serializers.CharField()),
        })},
        operation_id="me",
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "role": roles.role_of(user),
                "permissions": sorted(user.get_all_permissions()),
            }
        )

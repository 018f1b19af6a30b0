"""Admin pages for configuration and the delivery log. Secrets are names, so nothing secret is shown here."""

from django.contrib import admin

from . import models


@admin.register(models.Receiver)
class ReceiverAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "url", "secret_name", "send_resolved", "max_attempts", "enabled"]


@admin.register(models.Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "order", "receiver", "continue_matching", "group_wait_s", "group_interval_s"]


@admin.register(models.Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "starts_at", "ends_at", "created_by", "comment"]


@admin.register(models.Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["pk", "group", "receiver", "kind", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["status", "kind"]


for model in (models.InhibitRule, models.AlertRule, models.OnCallSchedule, models.EscalationPolicy,
              models.EscalationStep, models.Alert, models.AlertGroup, models.DeliveryAttempt):  # fmt: skip
    admin.site.register(model)

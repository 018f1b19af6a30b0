from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WebConfig(AppConfig):
    name = "fabric_ops.web"
    label = "web"
    verbose_name = "Web UI and API"

    def ready(self) -> None:
        from . import admin_audit, permissions, roles

        # Models added by later migrations (other apps) join the roles on every migrate; idempotent.
        post_migrate.connect(roles.sync_after_migrate, sender=self, dispatch_uid="fabric_ops.web.roles.sync")
        admin_audit.audit_registered_admins()
        permissions.connect_invalidation()  # the API's per-process permission cache

"""A table-less model that only carries the lab-control permissions (the lab keeps no rows in the database)."""

from django.db import models

__all__ = ["LabControl"]


class LabControl(models.Model):
    class Meta:
        managed = False  # no table: Django needs a model to hang permissions on, the lab has no rows
        default_permissions = ()
        permissions = [
            ("view_lab", "Can see the virtual lab's status"),
            ("inject_fault", "Can inject and clear faults in the virtual lab"),
        ]

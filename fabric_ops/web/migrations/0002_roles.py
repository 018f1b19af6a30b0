"""Create the viewer / operator / admin groups with their permissions (also re-run after every migrate)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from fabric_ops.web.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("web", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("topology", "0001_initial"),
        ("fabricconfig", "0002_pushjob_deviceconfigstate_complianceresult_and_more"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]

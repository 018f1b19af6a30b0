"""The shipped ``optic-rx-power-low`` rule only pages for a port that is up and carries traffic.

A port facing a drained or shut link reads about -40 dBm (the peer's laser is off); that is not a fault. The
rule now requires, through the port context labels of telemetry rules (docs/alerting.md): not administratively
down, not oper-down, its link not drained and not costed out by FabricOps. Only a rule still in its shipped
form (no tag matchers) is changed; an operator's own matchers are left alone.
"""

from django.db import migrations

NAME = "optic-rx-power-low"
PORT_UP = ["port_admin_up!=false", "port_oper_up!=false", "link_state!~drained|down|planned", "port_cost_out!=true"]


def forward(apps, schema_editor):
    AlertRule = apps.get_model("alerting", "AlertRule")
    for rule in AlertRule.objects.filter(name=NAME):
        if not rule.tag_matchers:
            rule.tag_matchers = PORT_UP
            rule.save(update_fields=["tag_matchers"])


def backward(apps, schema_editor):
    AlertRule = apps.get_model("alerting", "AlertRule")
    for rule in AlertRule.objects.filter(name=NAME):
        if rule.tag_matchers == PORT_UP:
            rule.tag_matchers = []
            rule.save(update_fields=["tag_matchers"])


class Migration(migrations.Migration):
    dependencies = [("alerting", "0003_alertrule_path")]
    operations = [migrations.RunPython(forward, backward)]

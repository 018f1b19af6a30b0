import pytest

from fabric_ops import routing
from fabric_ops.config.push import create_job
from fabric_ops.topology.models import Device, Fabric, Site


def test_site_queue():
    assert routing.site_queue({"sjc"}) == "site.sjc"
    assert routing.site_queue({"sjc", "lax"}) is None
    assert routing.site_queue(set()) is None


@pytest.mark.django_db
def test_push_jobs_route_to_their_site_queue_when_enabled(monkeypatch):
    sjc, lax = Site.objects.create(name="sjc", city="San Jose"), Site.objects.create(name="lax", city="Los Angeles")
    fabric = Fabric.objects.create(name="f", kind="rail-optimized")
    a = Device.objects.create(hostname="a", fabric=fabric, site=sjc, role="leaf", platform="eos")
    b = Device.objects.create(hostname="b", fabric=fabric, site=lax, role="leaf", platform="eos")
    one_site, two_sites = create_job([a], requested_by="t"), create_job([a, b], requested_by="t")

    assert routing.route_task("config.run_push_job", (one_site.pk,), {}, {}) is None  # off by default
    monkeypatch.setattr(routing, "SITE_QUEUES", True)
    assert routing.route_task("config.run_push_job", (one_site.pk,), {}, {}) == {"queue": "site.sjc"}
    assert routing.route_task("config.run_push_job", (two_sites.pk,), {}, {}) is None
    assert routing.route_task("config.backup_all", (), {}, {}) is None

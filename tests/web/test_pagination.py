"""List pagination: limit/offset with ``next`` known without counting and a count that stops at a cap."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from fabric_ops.topology.models import Interface, Link
from fabric_ops.web.api.pagination import Pagination


def counts_in(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_paging_walks_every_row_once_and_counts_exactly_below_the_cap(clients, fabric) -> None:
    viewer = clients["viewer"]
    total = Interface.objects.count()
    assert total > 6
    seen, url, pages = [], "/api/interfaces/?limit=4", 0
    while url:
        body = viewer.get(url).json()
        assert body["count"] == total
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert sorted(seen) == sorted(Interface.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) and pages == -(-total // 4)
    assert viewer.get(f"/api/interfaces/?limit=4&offset={total + 10}").json() == {
        "count": total, "next": None, "previous": f"http://testserver/api/interfaces/?limit=4&offset={total + 6}",
        "results": [],
    }  # fmt: skip


def test_a_list_that_fits_one_page_sends_no_count_query(clients, fabric) -> None:
    with CaptureQueriesContext(connection) as ctx:
        body = clients["viewer"].get("/api/links/").json()
    assert body["count"] == Link.objects.count() == len(body["results"]) and body["next"] is None
    assert counts_in(ctx) == []
    with CaptureQueriesContext(connection) as ctx:
        body = clients["viewer"].get("/api/links/?limit=2").json()
    assert body["count"] == Link.objects.count() and body["next"].endswith("limit=2&offset=2")
    assert len(counts_in(ctx)) == 1 and "LIMIT" in counts_in(ctx)[0].upper(), "the count is bounded"


@pytest.mark.parametrize("cap", [3, 5])
def test_count_is_null_above_the_cap_and_paging_still_works(clients, fabric, monkeypatch, cap) -> None:
    monkeypatch.setattr(Pagination, "count_cap", cap)
    total = Link.objects.count()
    assert total > cap + 2
    viewer = clients["viewer"]
    first = viewer.get("/api/links/?limit=2").json()
    assert first["count"] is None and first["next"]
    # Filtered down to the cap or fewer, the count is exact again.
    leaf = Q(a_interface__device__hostname="dx-a-leaf1") | Q(b_interface__device__hostname="dx-a-leaf1")
    expected = Link.objects.filter(leaf).count()
    assert 0 < expected <= cap
    assert viewer.get("/api/links/?device=dx-a-leaf1&limit=1").json()["count"] == expected
    seen, url = [], "/api/links/?limit=2"
    while url:
        body = viewer.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == sorted(Link.objects.values_list("id", flat=True))
    assert body["count"] == total, "the last page knows the exact total without counting"


def test_schema_documents_the_nullable_count(clients, fabric) -> None:
    schema = clients["viewer"].get("/api/schema/?format=json").json()
    page = schema["components"]["schemas"]["PaginatedLinkList"]["properties"]["count"]
    assert page["nullable"] is True and str(Pagination.count_cap) in page["description"]


def test_push_job_list_counts_devices_per_answered_job_without_grouping_every_job(clients, fabric) -> None:
    from fabric_ops.config.models import DeviceJob, PushJob

    devices = list(fabric.devices.values())[:3]
    empty = PushJob.objects.create(requested_by="operator", status="pending")
    three = PushJob.objects.create(requested_by="operator", status="pending")
    DeviceJob.objects.bulk_create(DeviceJob(job=three, device=d, status="pending") for d in devices)
    with CaptureQueriesContext(connection) as ctx:
        body = clients["admin"].get("/api/push-jobs/?limit=50").json()
    got = {row["id"]: row["device_count"] for row in body["results"]}
    expected = {job.pk: job.devices.count() for job in PushJob.objects.all()}
    assert got == expected and got[empty.pk] == 0 and got[three.pk] == 3
    listing = [q["sql"] for q in ctx.captured_queries if "fabricconfig_pushjob" in q["sql"]]
    assert listing and not any('JOIN "fabricconfig_devicejob"' in sql for sql in listing), "no join of every job's rows"

"""Lists read through fastlist plans answer exactly what the DRF serializers answer, with a bounded query count."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from fabric_ops.config.models import DeviceJob, IntentAssignment, PushJob, RoceProfile
from fabric_ops.topology.models import Device, Fabric, Interface, Link, OpticalChannel, Pod, Transceiver
from fabric_ops.web import audit
from fabric_ops.web.api import fastlist
from fabric_ops.web.api import serializers as api_serializers
from fabric_ops.web.api.urls import router

# The benchmark's endpoints (benchmarks/web.py API_ENDPOINTS) must never fall back to model instances.
BENCHMARKED = ["devices", "links", "interfaces", "push-jobs", "fabrics"]


@pytest.fixture
def varied(fabric, users):
    """Rows that exercise every converter and NULL path: datetimes set and unset, a pod and no pod, an optic and
    none, a fabric without a site, JSON parameters, IP addresses, an annotation, an audit row, an assignment."""
    pod = Pod.objects.get(name="pod1")
    Device.objects.filter(hostname="dx-a-leaf1").update(pod=pod, rail=3, asn=4200000001, mgmt_address="10.9.0.1",
                                                         loopback="2001:db8::1")  # fmt: skip
    optic = Transceiver.objects.get()
    Interface.objects.filter(device__hostname="dx-a-leaf2").update(transceiver=optic, address="10.0.0.1/31")
    Fabric.objects.filter(name="dx-fab-a").update(parameters={"radix": 64, "nested": {"a": [1, 2.5, None]}})
    now = timezone.now()
    job = PushJob.objects.create(requested_by="operator", reason="naïve ünïcode \u2028", status="succeeded",
                                 started_at=now, finished_at=now, approved_at=now, approved_by="admin")  # fmt: skip
    DeviceJob.objects.create(job=job, device=Device.objects.first(), status="confirmed")
    IntentAssignment.objects.create(fabric=fabric.fabric, role="leaf", roce_profile=RoceProfile.objects.get())
    audit.record(users["admin"], "update", Link.objects.first(), {"state": ["up", "drained"]})
    return fabric


# Lists whose serializers have fields a plan cannot prove identical (nested, many-valued, redacted or custom output):
# they keep DRF's serializer. Small or rarely listed; none is in the benchmark's BENCHMARKED set.
SERIALIZED_BY_DRF = frozenset({"optical-channels", "gpu-hosts", "device-jobs", "config-backups", "compliance-results"})


def planned_viewsets() -> list[tuple[str, type]]:
    out = []
    for prefix, viewset, _ in router.registry:
        if issubclass(viewset, fastlist.FastListMixin):
            out.append((prefix, viewset))
    return out


def drf_rows(viewset: type, queryset) -> bytes:
    return JSONRenderer().render(viewset.serializer_class(queryset, many=True).data)


@pytest.mark.parametrize(("prefix", "viewset"), planned_viewsets(), ids=[p for p, _ in planned_viewsets()])
def test_every_plan_answers_what_the_serializer_answers(varied, prefix, viewset) -> None:
    queryset = viewset.queryset.all()
    plan = fastlist.plan_for(viewset.serializer_class, queryset)
    if plan is None:  # serialized by DRF as before; which ones is a decision, so a change to the list is one too
        assert prefix in SERIALIZED_BY_DRF, f"{prefix} lost its plan (a field the plan cannot prove the same?)"
        return
    assert prefix not in SERIALIZED_BY_DRF, f"{prefix} has a plan now: take it off SERIALIZED_BY_DRF"
    assert queryset.exists(), f"{prefix}: no rows to compare; add some to the fixture"
    fast = JSONRenderer().render(plan.render(list(queryset.values_list(*plan.paths))))
    assert fast == drf_rows(viewset, queryset)


def fast_and_drf(client, url: str, monkeypatch) -> tuple[bytes, bytes]:
    """The same request answered through the plan and, with plans switched off, by the DRF serializer."""
    fast = client.get(url)
    with monkeypatch.context() as patch:
        patch.setattr(fastlist, "plan_for", lambda *args: None)
        slow = client.get(url)
    assert fast.status_code == slow.status_code == 200, (url, fast.content, slow.content)
    return fast.content, slow.content


@pytest.mark.parametrize("prefix", BENCHMARKED)
def test_benchmarked_lists_have_plans(db, prefix) -> None:
    viewset = {p: v for p, v, _ in router.registry}[prefix]
    assert fastlist.plan_for(viewset.serializer_class, viewset.queryset.all()) is not None


@pytest.mark.parametrize(
    "url",
    [
        *(f"/api/{p}/{q}" for p, _ in planned_viewsets() for q in ("", "?limit=2", "?limit=2&offset=3", "?offset=999")),
        "/api/links/?fabric=dx-fab-a", "/api/links/?device=dx-a-leaf1&state=up&limit=1", "/api/links/?ordering=-state",
        "/api/devices/?fabric=dx-fab-a&role=leaf", "/api/devices/?pod=pod1", "/api/devices/?q=leaf&ordering=-hostname",
        "/api/interfaces/?device=dx-a-leaf2&limit=3", "/api/interfaces/?transceiver=400G-DR4",
        "/api/push-jobs/?status=succeeded&ordering=created_at", "/api/fabrics/?kind=dci-backbone",
        "/api/audit/?action=update",
    ],
)  # fmt: skip
def test_lists_answer_byte_for_byte_what_drf_answers(clients, varied, monkeypatch, url) -> None:
    fast, slow = fast_and_drf(clients["admin"], url, monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("prefix", BENCHMARKED)
def test_list_query_count_is_bounded_and_independent_of_the_page(clients, varied, prefix,
                                                                  django_assert_max_num_queries) -> None:  # fmt: skip
    viewer = clients["admin"]
    viewer.get(f"/api/{prefix}/")  # the user's permissions are now cached for this process
    # token + page (+ a bounded count when the page is not the last): no permission query, no query per row
    with django_assert_max_num_queries(3):
        assert viewer.get(f"/api/{prefix}/?limit=1").status_code == 200
    with django_assert_max_num_queries(3):
        assert viewer.get(f"/api/{prefix}/?limit=5000").status_code == 200


class MethodField(serializers.ModelSerializer):
    extra = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = ["id", "extra"]

    def get_extra(self, obj: Device) -> str:
        return obj.hostname


class NullableChainWithoutDefault(serializers.ModelSerializer):
    pod_name = serializers.CharField(source="pod.name", read_only=True)  # DRF omits the key when pod is NULL

    class Meta:
        model = Device
        fields = ["id", "pod_name"]


class PropertySource(serializers.ModelSerializer):
    text = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = Device
        fields = ["id", "text"]


class CustomRepresentation(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["id"]

    def to_representation(self, instance: Device) -> dict:
        return {"id": -instance.id}


@pytest.mark.parametrize(
    ("serializer", "model"),
    [
        (MethodField, Device),  # no values_fields equivalent declared
        (NullableChainWithoutDefault, Device),
        (PropertySource, Device),
        (CustomRepresentation, Device),
        (api_serializers.OpticalChannelSerializer, OpticalChannel),  # many-valued relation (spans)
        (api_serializers.GpuHostSerializer, None),  # nested serializer
        (api_serializers.DeviceJobSerializer, DeviceJob),  # redacts its texts
    ],
)
def test_no_plan_where_the_answer_could_differ(db, serializer, model) -> None:
    model = model or serializer.Meta.model
    assert fastlist.plan_for(serializer, model.objects.all()) is None


def test_device_without_pod_reads_null_like_drf(varied) -> None:
    queryset = Device.objects.select_related("fabric", "site", "pod").order_by("id")
    plan = fastlist.plan_for(api_serializers.DeviceSerializer, queryset)
    rows = plan.render(list(queryset.values_list(*plan.paths)))
    assert {r["pod_name"] for r in rows} == {None, "pod1"}
    assert JSONRenderer().render(rows) == JSONRenderer().render(
        api_serializers.DeviceSerializer(queryset, many=True).data
    )


def test_filterset_is_built_only_when_a_filter_is_named(clients, varied, monkeypatch) -> None:
    import django_filters

    built = []
    real = django_filters.FilterSet.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        real(self, *args, **kwargs)

    monkeypatch.setattr(django_filters.FilterSet, "__init__", counting)
    viewer = clients["viewer"]
    assert viewer.get("/api/devices/?limit=2&offset=1&ordering=-hostname").status_code == 200
    assert viewer.get("/api/fabrics/").status_code == 200
    assert built == []
    body = viewer.get("/api/devices/?role=spine").json()
    assert built == ["DeviceFilter"] and {d["role"] for d in body["results"]} == {"spine"}
    assert viewer.get("/api/interfaces/?device_id=abc").status_code == 400, "invalid filter values still refused"
    assert viewer.get("/api/fabrics/?kind=dci-backbone").json()["count"] == 1, "filterset_fields views filter too"

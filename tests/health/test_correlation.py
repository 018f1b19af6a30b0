"""Correlation and the engine: handoff-format entries in, one incident per root cause out."""

from __future__ import annotations

import json

import pytest

from fabric_ops.health import incidents
from fabric_ops.health.choices import IncidentStatus, ScopeKind
from fabric_ops.health.correlation import common_span, root_of
from fabric_ops.health.detectors.base import NS, Finding
from fabric_ops.health.engine import DetectionEngine
from fabric_ops.health.models import Incident
from fabric_ops.health.topology import TopologyIndex, build_index
from fabric_ops.topology.models import Link, OpticalChannel
from tests.topology.factories import two_sites

T0 = 1_800_000_000 * NS


def index() -> TopologyIndex:
    idx = TopologyIndex()
    for lid, a, b in ((1, ("leaf1", "Et1"), ("spine1", "Et1")), (2, ("leaf1", "Et2"), ("spine2", "Et1")),
                      (3, ("leaf2", "Et1"), ("spine1", "Et2"))):  # fmt: skip
        idx.link_ends[lid] = (a, b)
        idx.port_link[a] = idx.port_link[b] = lid
        idx.link_kind[lid], idx.link_state[lid] = "fabric", "up"
    for dev, role in (("leaf1", "leaf"), ("leaf2", "leaf"), ("spine1", "spine"), ("spine2", "spine")):
        idx.device_role[dev], idx.device_fabric[dev] = role, "f"
    idx.port_speed = {p: 400 for p in idx.port_link} | {("leaf1", "Et9"): 400}
    idx.host_ports = {("leaf1", "Et9")}
    idx.uplinks = {"leaf1": ["Et1", "Et2"], "leaf2": ["Et1"]}
    idx.channel_link = {"ch1": 11, "ch2": 12, "ch3": 13}
    idx.channel_spans = {"ch1": ("north",), "ch2": ("north",), "ch3": ("south",)}
    return idx


IDX = index()


@pytest.mark.parametrize(
    ("finding", "down", "storms", "key"),
    [
        (Finding("link-flap", "leaf1", "Et1"), (), {}, "link:1"),
        (Finding("link-down", "spine1", "Et1"), (), {}, "link:1"),  # the other end: the same root
        (Finding("link-down", "leaf1", "Et1"), ("spine1",), {}, "device:spine1"),  # a dead peer explains it
        (Finding("device-unreachable", "spine1"), (), {}, "device:spine1"),
        (Finding("pfc-storm", "leaf1", "Et9/3"), (), {}, "port:leaf1:Et9"),
        (Finding("pfc-pause", "leaf1", "Et1/3"), (), {"leaf1": "port:leaf1:Et9"}, "port:leaf1:Et9"),  # symptom
        (Finding("pfc-pause", "leaf2", "Et1/3"), (), {"leaf1": "port:leaf1:Et9"}, "port:leaf2:Et1"),
        (Finding("dci-degradation", "dci1", "ch1"), (), {}, "channel:ch1"),
        (Finding("crc-errors", "leaf1", "Et9"), (), {}, "port:leaf1:Et9"),  # a host port: no switch link
    ],
)
def test_root_of(finding, down, storms, key):
    assert root_of(finding, IDX, down, storms).key == key


@pytest.mark.parametrize(
    ("channels", "span"), [(["ch1", "ch2"], "north"), (["ch1", "ch3"], None), (["ch1"], None), ([], None)]
)
def test_common_span(channels, span):
    assert common_span(channels, IDX) == span


def entry(kind, device, t, **data):
    return {"type": kind, "device": device, "ts": T0 + int(t * NS), "data": data}


def test_engine_flap_from_state_entries_then_ages_out():
    engine = DetectionEngine(IDX)
    results = [engine.ingest(entry("state", "leaf1", t, measurement="interface", tags={"interface": "Et1"},
                                   field="oper_up", old=t % 2 == 0, new=t % 2 == 1))
               for t in range(4)]  # fmt: skip
    assert results[0].raised[0].kind == "link-down"
    assert [f.kind for f in results[2].raised] == ["link-flap"]
    assert engine.scan(T0 + 30 * NS).cleared == []  # 60 s window: still flapping
    assert ("link-flap", "leaf1", "Et1") in engine.scan(T0 + 100 * NS).cleared


def test_engine_storm_from_samples_clears_when_the_series_goes_quiet():
    engine = DetectionEngine(IDX)
    tags = {"interface": "Et9", "priority": "3"}
    for t in range(3):
        result = engine.ingest(entry("sample", "leaf1", t, measurement="pfc", tags=tags,
                                     fields={"rx_pause_ps": 24_000.0}))  # fmt: skip
    assert "pfc-storm" in [f.kind for f in result.raised]
    assert ("pfc-storm", "leaf1", "Et9/3") in engine.active
    assert ("pfc-storm", "leaf1", "Et9/3") in engine.scan(T0 + 10 * NS).cleared


def test_engine_stream_lost_and_restored():
    engine = DetectionEngine(IDX)
    lost = engine.ingest(entry("stream", "spine1", 0, state="lost", reason="StatusCode.UNAVAILABLE: connect failed"))
    assert lost.raised[0].kind == "device-unreachable"
    restored = engine.ingest(entry("stream", "spine1", 5, state="restored", gap_s=5.0))
    assert restored.cleared == [("device-unreachable", "spine1", "")]


def test_engine_ecmp_imbalance_and_incast_from_latest_values():
    engine = DetectionEngine(IDX)
    latest = {
        "leaf1": {
            "interface|interface=Et1": {"ts": T0, "fields": {"out_bps": 360e9, "in_bps": 100e9}},
            "interface|interface=Et2": {"ts": T0, "fields": {"out_bps": 80e9, "in_bps": 100e9}},
            "interface|interface=Et9": {"ts": T0, "fields": {"out_bps": 399e9, "in_bps": 1e9}},
            "queue|interface=Et9,queue=3": {"ts": T0, "fields": {"ecn_marked_pps": 1e5}},
        }
    }
    kinds = {f.kind: f for f in engine.scan_latest(latest).raised}
    assert kinds["ecmp-imbalance"].evidence["busiest"] == "Et1"
    assert root_of(kinds["ecmp-imbalance"], IDX).key == "uplinks:leaf1"
    assert "incast" not in kinds  # two senders: not an incast yet
    latest["leaf1"]["interface|interface=Et3"] = {"ts": T0, "fields": {"out_bps": 0.0, "in_bps": 200e9}}
    kinds = {f.kind: f for f in engine.scan_latest(latest).raised}
    assert kinds["incast"].subject == "Et9" and kinds["incast"].evidence["senders"] == 3


def test_hot_link_counts_traffic_samples_not_the_counter_refreshes_of_their_series():
    """One hot 10 s traffic sample, then 31 s of 1 s discard refreshes of the interface series (the traffic
    subscription stalled): one sample is not "hot for 30 s". Each real traffic sample counts once."""
    engine = DetectionEngine(IDX)

    def scan(second: int, traffic_at: int) -> set[str]:
        fields = {"out_bps": 390e9, "in_bps": 1e9, "in_discards_ps": 0.0}
        entry = {"ts": T0 + second * NS, "fields": fields,
                 "field_ts": {"out_bps": T0 + traffic_at * NS, "in_bps": T0 + traffic_at * NS}}  # fmt: skip
        return {f.kind for f in engine.scan_latest({"leaf1": {"interface|interface=Et1": entry}}).raised}

    assert not any("hot-link" in scan(second, 0) for second in range(32))
    assert len(engine.series[("interface-util", "leaf1", "Et1")]) == 1
    raised = set().union(*(scan(second, second - second % 10) for second in range(32, 62)))
    assert "hot-link" in raised  # traffic samples at 0, 30, 40, 50 and 60 s: hot for 30 s by their own times


@pytest.mark.django_db
def test_two_wavelengths_over_one_span_fold_into_one_span_incident():
    b = two_sites()
    north = b.spans["north"]
    extra = b.link("dx-a-dci", "dx-b-dci", kind="dci", n=3)  # a second wavelength over the north span
    OpticalChannel.objects.create(name="dx-ch3", link=extra, frequency_ghz=193400.0).spans.add(north)
    idx = build_index()
    first = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch1", ts=T0)], idx)
    assert first[0][0].root_key == "channel:dx-ch1" and first[0][1]
    again = incidents.record([Finding("dci-degradation", "dx-b-dci", "dx-ch1", ts=T0)], idx)  # the far end
    assert again[0][0].pk == first[0][0].pk and not again[0][1]
    folded = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch3", ts=T0)], idx)
    span = folded[0][0]
    assert (span.root_key, span.scope_kind, span.span) == ("span:dx-north", ScopeKind.SPAN, "dx-north")
    assert Incident.objects.exclude(status=IncidentStatus.RESOLVED).count() == 1
    assert {a.subject for a in span.alarms.all()} == {"dx-ch1", "dx-ch3"}
    assert set(span.impact["removed_link_ids"]) == {b.links["dx-a-dci-dx-b-dci#1"].pk, extra.pk}
    # the southern wavelength is another root
    south = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch2", ts=T0)], idx)[0][0]
    assert south.root_key == "channel:dx-ch2"


@pytest.mark.django_db
def test_a_dead_switch_folds_its_peers_link_down_incidents():
    b = two_sites()
    idx = build_index()
    for n in (1, 2):
        link = b.links[f"dx-a-leaf1-dx-a-spine#{n}"]
        incidents.record([Finding("link-down", "dx-a-leaf1", link.a_interface.name, ts=T0)], idx)
    assert Incident.objects.filter(kind="link-down", status="open").count() == 2
    ((dead, new),) = incidents.record([Finding("device-unreachable", "dx-a-spine", ts=T0)], idx)
    assert new and dead.root_key == "device:dx-a-spine"
    assert Incident.objects.exclude(status="resolved").count() == 1
    assert dead.alarms.filter(kind="link-down").count() == 2
    late = incidents.record([Finding("link-down", "dx-a-leaf2", b.links["dx-a-leaf2-dx-a-spine#1"].a_interface.name,
                                     ts=T0)], idx)  # fmt: skip
    assert late[0][0].pk == dead.pk
    assert Link.objects.count() > 0


def test_liveness_comes_from_latest_values_not_from_the_sparse_stream():
    engine = DetectionEngine(IDX)
    engine.ingest(entry("sample", "leaf1", 0, measurement="queue", tags={"interface": "Et1", "queue": "3"},
                        fields={"dropped_pps": 5.0}))  # fmt: skip
    alive = {"leaf1": {"pfc|interface=Et1,priority=3": {"ts": T0 + 19 * NS, "fields": {"rx_pause_ps": 0.0}}}}
    assert "telemetry-lost" not in [f.kind for f in engine.scan(T0 + 20 * NS, alive).raised]
    silent = engine.scan(T0 + 60 * NS, alive).raised
    assert [(f.kind, f.device) for f in silent if f.kind == "telemetry-lost"] == [("telemetry-lost", "leaf1")]


def test_a_lagging_collector_that_still_delivers_is_not_telemetry_lost():
    from fabric_ops.health.detect import arrivals_from_health

    engine = DetectionEngine(IDX)
    lagging = {"leaf1": {"pfc|interface=Et1,priority=3": {"ts": T0, "fields": {"rx_pause_ps": 0.0}}}}
    now = T0 + 45 * NS  # the newest sample is 45 s old: the collector is that far behind its switch
    health = {b"leaf1": json.dumps({"seconds_since_message": 0.2, "updated_at": now / NS - 0.5, "synced": True})}
    arrivals = arrivals_from_health(health, now / NS)
    assert arrivals == {"leaf1": now - int(0.7 * NS)}
    assert "telemetry-lost" not in [f.kind for f in engine.scan(now, lagging, arrivals).raised]
    # the collector died: its health entry is no longer refreshed, and silence counts again
    later = now + 40 * NS
    assert arrivals_from_health(health, later / NS) == {}
    lost = engine.scan(later, lagging, arrivals_from_health(health, later / NS)).raised
    assert [f.kind for f in lost] == ["telemetry-lost"]


@pytest.mark.django_db
def test_a_wavelength_over_a_span_with_an_active_span_incident_joins_it_directly():
    """During a span fault every new finding on one of its wavelengths opened a channel incident: folded at once
    when a second one was open, left open (and dispatched on its own) when it was the only one."""
    b = two_sites()
    north = b.spans["north"]
    chans = []
    for n in (3, 4):
        link = b.link("dx-a-dci", "dx-b-dci", kind="dci", n=n)
        chans.append(OpticalChannel.objects.create(name=f"dx-ch{n}", link=link, frequency_ghz=193100.0 + 100 * n))
        chans[-1].spans.add(north)
    idx = build_index()
    incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch1", ts=T0)], idx)
    ((span, _),) = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch3", ts=T0)], idx)
    assert span.root_key == "span:dx-north"
    ((joined, new),) = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch4", ts=T0)], idx)
    assert joined.pk == span.pk and not new
    assert not Incident.objects.filter(root_key="channel:dx-ch4").exists()  # not even a folded one
    assert {a.subject for a in span.alarms.all()} == {"dx-ch1", "dx-ch3", "dx-ch4"}
    # a wavelength over the other span is still its own root
    ((south, new),) = incidents.record([Finding("dci-degradation", "dx-a-dci", "dx-ch2", ts=T0)], idx)
    assert new and south.root_key == "channel:dx-ch2"

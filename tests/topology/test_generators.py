"""Fabric generators: Clos sizes against the formulas, cabling, addressing, DCI, BOM, persistence."""

from __future__ import annotations

import ipaddress
import math
from collections import Counter, defaultdict

import pytest
from django.core.management import CommandError, call_command

from fabric_ops.errors import GeneratorError
from fabric_ops.topology.generators import (
    DciParams,
    ExtRef,
    FabricParams,
    bill_of_materials,
    clos_sizes,
    delete_fabric,
    persist_plan,
    persist_plans,
    plan_fabric,
    plan_multisite,
    resolve_params,
)
from fabric_ops.topology.models import (
    Device,
    Fabric,
    GpuHost,
    GpuNic,
    Interface,
    Link,
    OpticalChannel,
    OpticalSpan,
    Pod,
    Transceiver,
)


def params(**kw) -> FabricParams:
    base = {"name": "t", "site": "sjc1", "city": "San Jose"}
    return FabricParams(**(base | kw))


# ------------------------------------------------------------------------------------------ sizes

# (overrides, tiers, leaves, spines, superspines, links leaf-spine parallel, spine-superspine parallel)
SIZE_CASES = [
    # 2-tier, half-full: 32 leaves x 32 uplinks need 16 radix-64 spines (2 links to each)
    ({"gpus": 1024, "radix": 64}, 2, 32, 16, 0, 2, 0),
    # 2-tier at its Clos maximum: k leaves, k/2 spines, k^2/2 = 2048 host ports
    ({"gpus": 2048, "radix": 64}, 2, 64, 32, 0, 1, 0),
    # one GPU host more than 2 tiers take -> 3 tiers: pods of k/2 leaves (4 rail groups), k/2 spines per pod
    ({"gpus": 2056, "radix": 64}, 3, 72, 3 * 32, 32 * 2, 1, 16),
    ({"gpus": 4096, "radix": 64}, 3, 128, 4 * 32, 32 * 2, 1, 16),
    # 3-tier at its maximum with radix 8: k pods, k^3/4 = 128 host ports, (k/2)^2 = 16 superspines
    ({"gpus": 128, "radix": 8, "gpus_per_host": 4}, 3, 32, 32, 16, 1, 1),
    # 3:1 oversubscription: 48 down + 16 up per leaf
    ({"gpus": 3072, "radix": 64, "oversubscription": 3}, 2, 64, 16, 0, 1, 0),
    # multi-plane: rails striped over 2 planes doubles what 2 tiers reach
    ({"gpus": 4096, "radix": 64, "planes": 2}, 2, 128, 64, 0, 1, 0),
    # 128x400G, forced 3 tiers
    ({"gpus": 16384, "radix": 128, "port_speed_gbps": 400, "tiers": 3}, 3, 256, 4 * 64, 64 * 2, 1, 32),
    # the 100k-GPU benchmark fabric: 196 rail groups in 25 pods, 16 superspines per group (4 links per spine)
    ({"gpus": 100_000, "radix": 128, "tiers": 3}, 3, 1568, 25 * 64, 64 * 16, 1, 4),
]


@pytest.mark.parametrize(("kw", "tiers", "leaves", "spines", "superspines", "par1", "par2"), SIZE_CASES)
def test_clos_sizes_match_the_formulas(kw, tiers, leaves, spines, superspines, par1, par2):
    p = resolve_params(params(**kw))
    s = clos_sizes(p)
    k = p.radix
    assert (s.tiers, s.leaves, s.spines, s.superspines) == (tiers, leaves, spines, superspines)
    assert (s.leaf_spine_parallel, s.spine_superspine_parallel) == (par1, par2)
    assert s.leaf_up == math.ceil(k / (1 + p.oversubscription)) and s.leaf_down + s.leaf_up == k
    assert s.hosts == p.gpus // p.gpus_per_host and s.hosts_per_group == s.leaf_down
    assert s.groups == math.ceil(s.hosts / s.leaf_down)
    assert s.leaves == s.groups * p.rails  # one leaf per rail per group, whatever the plane count
    # Every leaf uplink lands on a spine port; spines never oversubscribed.
    if tiers == 2:
        assert s.leaves_per_plane <= k and s.spines_per_plane * k >= s.leaves_per_plane * s.leaf_up
        assert s.max_host_ports_per_plane == k * s.leaf_down
    else:
        assert s.pods_per_plane <= k and s.groups_per_pod * p.rails // p.planes <= k // 2
        assert s.spine_superspine_links == s.spines * k // 2
        assert s.max_host_ports_per_plane == k * (k // 2) * s.leaf_down
    if p.oversubscription == 1:
        assert s.max_host_ports_per_plane == (k * k // 2 if tiers == 2 else k**3 // 4)


def test_tiers_auto_picks_the_smallest_that_fits():
    assert clos_sizes(resolve_params(params(gpus=2048, radix=64))).tiers == 2
    assert clos_sizes(resolve_params(params(gpus=2056, radix=64))).tiers == 3


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"radix": 63}, "radix:"),
        ({"radix": 2}, "radix:"),
        ({"gpus": 1020}, "gpus: 1020 is not a multiple"),
        ({"gpus": 0}, "gpus:"),
        ({"tiers": 4}, "tiers:"),
        ({"planes": 2, "kind": "rail-optimized"}, "planes:"),
        ({"planes": 3}, "rails: 8 rails cannot be striped"),
        ({"platforms": {"leaf": "junos"}}, "platforms: unknown platform 'junos'"),
        ({"platforms": {"tor": "eos"}}, "platforms: unknown role 'tor'"),
        ({"oversubscription": 0.5}, "oversubscription:"),
        ({"port_speed_gbps": 300}, "port_speed_gbps:"),
        ({"name": "Bad Name"}, "name:"),
        ({"site": "SJC 1"}, "site:"),
        ({"mgmt_network": "127.1.0.0/33"}, "mgmt_network:"),
        ({"p2p_network": "10.0.0.1/24"}, "p2p_network:"),
        ({"asn_base": 0}, "asn_base:"),
        ({"transceivers": {800: "400G-DR4"}}, "transceivers:"),
        ({"transceivers": {800: "900G-XX"}}, "transceiver '900G-XX' is not in the catalogue"),
        ({"kind": "torus"}, "kind:"),
        ({"eapi_port": 70000}, "eapi_port:"),
    ],
)
def test_bad_parameters_name_the_parameter(kw, fragment):
    with pytest.raises(GeneratorError, match=None) as exc:
        plan_fabric(params(**kw))
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"gpus": 4096, "radix": 64, "tiers": 2}, "gpus: 4096 GPUs need 128 leaves"),
        ({"gpus": 136, "radix": 8, "gpus_per_host": 4}, "gpus: 136 GPUs need 9 pods"),
        ({"gpus": 64, "radix": 8, "tiers": 3}, "rails: 8 rails per plane do not fit in a pod of 4 leaves"),
        ({"gpus": 1024, "radix": 64, "mgmt_network": "127.1.0.0/28"}, "mgmt_network: 127.1.0.0/28 has room for 14"),
        ({"gpus": 1024, "radix": 64, "p2p_network": "10.0.0.0/24"}, "p2p_network: 10.0.0.0/24 has room"),
        ({"gpus": 1024, "radix": 64, "oversubscription": 63.5}, "oversubscription:"),
    ],
)
def test_fabrics_that_cannot_be_built_are_refused(kw, fragment):
    with pytest.raises(GeneratorError) as exc:
        plan_fabric(params(**kw))
    assert fragment in str(exc.value)


# ------------------------------------------------------------------------------------------ cabling


def _check_plan_invariants(plan, external=frozenset()):
    """Properties every generated fabric must have; ``external``: ports cabled by another plan (DCI uplinks)."""
    used = Counter({i: 1 for i in external})
    for link in plan.links:
        for end in (link.a, link.b):
            if not isinstance(end, ExtRef):
                used[end] += 1
    for nic in plan.nics:
        used[nic.leaf_interface] += 1
    assert max(used.values()) == 1, "an interface is in more than one link"
    for i, iface in enumerate(plan.interfaces):
        assert iface.admin_up == (i in used)
        assert (iface.transceiver is None) == (not iface.admin_up)
        assert plan.device_ports[iface.device][0] <= i < plan.device_ports[iface.device][1]
    names = [(i.device, i.name) for i in plan.interfaces]
    assert len(set(names)) == len(names)
    for attr in ("hostname", "mgmt_address", "loopback"):
        values = [getattr(d, attr) for d in plan.devices]
        assert len(set(values)) == len(values), f"duplicate {attr}"
    addresses = [i.address for i in plan.interfaces if i.address]
    assert len(set(addresses)) == len(addresses)
    for link in plan.links:
        a, b = plan.interfaces[link.a].address, plan.interfaces[link.b].address
        na, nb = ipaddress.ip_interface(a), ipaddress.ip_interface(b)
        assert na.network == nb.network and na.network.prefixlen == 31 and na.ip != nb.ip
    return used


@pytest.mark.parametrize(
    "kw",
    [
        {"gpus": 1024, "radix": 64},
        {"gpus": 4096, "radix": 64},
        {"gpus": 128, "radix": 8, "gpus_per_host": 4},
        {"gpus": 3072, "radix": 64, "oversubscription": 3, "platforms": {"leaf": "eos", "spine": "huawei_vrp"}},
        {"gpus": 4096, "radix": 32, "port_speed_gbps": 400, "planes": 2, "tiers": 3},
    ],
)
def test_every_port_cabled_once_and_addresses_unique(kw):
    plan = plan_fabric(params(**kw))
    s = plan.sizes
    _check_plan_invariants(plan)
    roles = Counter(d.role for d in plan.devices)
    assert roles == Counter({"leaf": s.leaves, "spine": s.spines} | ({"superspine": s.superspines} if s.tiers == 3
                                                                     else {}))  # fmt: skip
    assert len(plan.links) == s.fabric_links and len(plan.nics) == s.host_links == s.hosts * s.rails
    # Non-blocking where asked: leaf capacity down == up at 1:1; every spine uses all its uplinks in 3 tiers.
    per_device = defaultdict(lambda: [0, 0])  # device -> [down used, up used]
    for link in plan.links:
        per_device[plan.interfaces[link.a].device][1] += 1
        per_device[plan.interfaces[link.b].device][0] += 1
    for nic in plan.nics:
        per_device[plan.interfaces[nic.leaf_interface].device][0] += 1
    for d, dev in enumerate(plan.devices):
        down, up = per_device[d]
        if dev.role == "leaf":
            assert up == s.leaf_up and down <= s.leaf_down
        elif dev.role == "spine" and s.tiers == 3:
            assert up == plan.parameters["radix"] // 2
        assert down + up <= plan.parameters["radix"]


def test_rail_optimized_nic_n_goes_to_the_rail_n_leaf_of_its_group():
    plan = plan_fabric(params(gpus=1024, radix=64))
    leaf_hosts = defaultdict(set)
    host_leaves = defaultdict(dict)
    for nic in plan.nics:
        iface = plan.interfaces[nic.leaf_interface]
        leaf = plan.devices[iface.device]
        assert leaf.role == "leaf" and leaf.rail == nic.rail
        assert iface.description == f"{plan.hosts[nic.host].name} {nic.name}"
        leaf_hosts[iface.device].add(nic.host)
        host_leaves[nic.host][nic.rail] = (iface.device, iface.name)
    for rails in host_leaves.values():
        assert sorted(rails) == list(range(8))
        # same port number on every rail leaf, and every rail leaf of the group serves exactly the same hosts
        assert len({name for _, name in rails.values()}) == 1
        assert len({frozenset(leaf_hosts[d]) for d, _ in rails.values()}) == 1
    assert all(len(h) == 32 for h in leaf_hosts.values())  # a group is leaf_down = 32 hosts


def test_multi_plane_rails_striped_and_planes_independent():
    plan = plan_fabric(params(gpus=4096, radix=64, planes=2))
    planes = [p for p in plan.pods if p.kind == "plane"]
    assert [p.name for p in planes] == ["plane1", "plane2"] and plan.kind == "multi-plane"
    plane_of = {d: plan.pods[dev.pod].index for d, dev in enumerate(plan.devices)}
    for nic in plan.nics:
        leaf = plan.interfaces[nic.leaf_interface].device
        assert plane_of[leaf] == nic.rail % 2
    for link in plan.links:
        assert plane_of[plan.interfaces[link.a].device] == plane_of[plan.interfaces[link.b].device]
    assert Counter(plane_of[d] for d, dev in enumerate(plan.devices) if dev.role == "spine") == {0: 32, 1: 32}


def test_asn_plan_follows_rfc7938():
    plan = plan_fabric(params(gpus=4096, radix=64))  # 3 tiers, 4 pods
    leaves = [d for d in plan.devices if d.role == "leaf"]
    assert len({d.asn for d in leaves}) == len(leaves)
    spine_asn_by_pod = defaultdict(set)
    for d in plan.devices:
        if d.role == "spine":
            spine_asn_by_pod[d.pod].add(d.asn)
    assert all(len(v) == 1 for v in spine_asn_by_pod.values())
    assert len({next(iter(v)) for v in spine_asn_by_pod.values()}) == 4
    assert {d.asn for d in plan.devices if d.role == "superspine"} == {4_200_000_000}
    assert not {d.asn for d in leaves} & {next(iter(v)) for v in spine_asn_by_pod.values()}
    assert all(4_200_000_000 <= d.asn <= 4_294_967_294 for d in plan.devices)


def test_interface_names_follow_the_platform():
    plan = plan_fabric(params(gpus=1024, radix=64, platforms={"leaf": "eos", "spine": "huawei_vrp"}))
    leaf = next(d for d, dev in enumerate(plan.devices) if dev.role == "leaf")
    spine = next(d for d, dev in enumerate(plan.devices) if dev.role == "spine")
    assert plan.interfaces[plan.device_ports[leaf][0]].name == "Ethernet1/1"
    assert plan.interfaces[plan.device_ports[spine][0] + 4].name == "800GE1/0/5"
    plan400 = plan_fabric(params(gpus=512, radix=32, port_speed_gbps=400, platforms={"leaf": "huawei_vrp"}))
    assert plan400.interfaces[0].name == "400GE1/0/1" and plan400.interfaces[0].transceiver == "400G-DR4"
    dev = plan.devices[0]
    assert ipaddress.ip_address(dev.mgmt_address) in ipaddress.ip_network("127.100.0.0/16")


# ------------------------------------------------------------------------------------------ multi-site


def _three_sites(**dci_kw):
    sites = [
        params(name="c-sjc", site="sjc1", gpus=256, radix=16, port_speed_gbps=400),
        params(name="c-chi", site="chi1", city="Chicago", gpus=256, radix=16, platforms={"spine": "huawei_vrp"}),
        params(name="c-ash", site="ash1", city="Ashburn", gpus=512, radix=32, port_speed_gbps=400),
    ]
    dci = DciParams(spans=[("sjc1", "chi1", 400.0), ("chi1", "ash1", 81.0)], **dci_kw)
    return plan_multisite(sites, dci)


def test_multisite_spans_amplifiers_and_channels():
    plans = _three_sites()
    *sites, bb = plans
    assert bb.kind == "dci-backbone" and [p.kind for p in sites] == ["rail-optimized"] * 3
    spans = {s.name: s for s in bb.spans}
    assert spans["dci-sjc1-chi1"].amplifier_count == 4  # ceil(400/80) - 1
    assert spans["dci-chi1-ash1"].amplifier_count == 1  # ceil(81/80) - 1
    assert spans["dci-sjc1-chi1"].loss_db == pytest.approx(400 * 0.22 + 1.0)
    assert len(bb.channels) == 3 * 4  # every site pair x 4 wavelengths
    per_span = defaultdict(list)
    for ch in bb.channels:
        assert (ch.frequency_ghz - 193_100.0) / 6.25 == int((ch.frequency_ghz - 193_100.0) / 6.25)
        assert 191_325 < ch.frequency_ghz < 196_125 and ch.rate_gbps == 400
        link = bb.links[ch.link]
        assert link.kind == "dci" and link.capacity_gbps == 400
        a, b = bb.devices[bb.interfaces[link.a].device], bb.devices[bb.interfaces[link.b].device]
        assert a.role == b.role == "dci" and a.site != b.site
        assert bb.interfaces[link.a].transceiver == "400G-ZR+"
        for span in ch.spans:
            per_span[span].append(ch.frequency_ghz)
    # sjc1-ash1 is routed over both spans (express through chi1); no frequency reused on a fibre
    assert next(c.spans for c in bb.channels if c.name.startswith("dci-sjc1-ash1")) == ("dci-sjc1-chi1",
                                                                                         "dci-chi1-ash1")  # fmt: skip
    for freqs in per_span.values():
        assert len(freqs) == len(set(freqs)) == 8


def test_multisite_dci_routers_attach_to_the_site_top_tier():
    *sites, bb = _three_sites()
    by_name = {p.name: p for p in sites}
    uplinks = [link for link in bb.links if isinstance(link.a, ExtRef)]
    assert len(uplinks) == 3 * 2 * 4  # sites x routers x uplinks
    for link in uplinks:
        site_plan = by_name[link.a.fabric]
        i = site_plan.interface_index(link.a.hostname, link.a.interface)
        top = site_plan.devices[site_plan.interfaces[i].device]
        dci_dev = bb.devices[bb.interfaces[link.b].device]
        assert top.role == "superspine" and top.site == dci_dev.site
        site_addr = ipaddress.ip_interface(site_plan.interfaces[i].address)
        dci_addr = ipaddress.ip_interface(bb.interfaces[link.b].address)
        assert site_addr.network == dci_addr.network and site_addr != dci_addr
    for p in sites:
        ext = {p.interface_index(lk.a.hostname, lk.a.interface) for lk in uplinks if lk.a.fabric == p.name}
        assert len(ext) == 8
        _check_plan_invariants(p, ext)
    all_loopbacks = [d.loopback for p in [*sites, bb] for d in p.devices]
    assert len(set(all_loopbacks)) == len(all_loopbacks)
    all_asns = [d.asn for p in sites for d in p.devices if d.role == "leaf"]
    assert len(set(all_asns)) == len(all_asns)


@pytest.mark.parametrize(
    ("dci_kw", "fragment"),
    [
        ({"rate_gbps": 100}, "dci.rate_gbps:"),
        ({"spans": [("sjc1", "nyc1", 10.0)]}, "dci.spans: span sjc1-nyc1 names unknown site 'nyc1'"),
        ({"spans": [("sjc1", "chi1", 2000.0), ("chi1", "ash1", 81.0)]}, "beyond 400G-ZR+ reach"),
        ({"spans": [("sjc1", "chi1", 10.0)]}, "no fibre route between sites"),
        ({"radix": 6}, "dci.radix:"),
        ({"wavelengths_per_pair": 40, "radix": 200}, "dci.wavelengths_per_pair: C band full"),
        ({"platform": "junos"}, "dci.platform:"),
    ],
)
def test_multisite_bad_parameters(dci_kw, fragment):
    sites = [params(name="a", site="sjc1", gpus=256, radix=16), params(name="b", site="chi1", gpus=256, radix=16),
             params(name="c", site="ash1", gpus=256, radix=16)]  # fmt: skip
    spans = dci_kw.pop("spans", [("sjc1", "chi1", 400.0), ("chi1", "ash1", 81.0)])
    with pytest.raises(GeneratorError) as exc:
        plan_multisite(sites, DciParams(spans=spans, **dci_kw))
    assert fragment in str(exc.value)


def test_multisite_refuses_overlapping_plans():
    a = params(name="a", site="sjc1", gpus=256, radix=16, p2p_network="10.0.0.0/16")
    b = params(name="b", site="chi1", gpus=256, radix=16, p2p_network="10.0.0.0/20")
    with pytest.raises(GeneratorError, match=r"p2p_network: 10\.0\.0\.0/16 overlaps chi1\.p2p_network"):
        plan_multisite([a, b], DciParams(spans=[("sjc1", "chi1", 10.0)]))
    b = params(name="b", site="chi1", gpus=256, radix=16, asn_base=4_200_000_005)
    with pytest.raises(GeneratorError, match="asn_base: the ASN plans of site sjc1 and site chi1 overlap"):
        plan_multisite([a, b], DciParams(spans=[("sjc1", "chi1", 10.0)]))


# ------------------------------------------------------------------------------------------ BOM


def test_bom_counts_and_power_of_a_plan():
    plan = plan_fabric(params(gpus=1024, radix=64, platforms={"leaf": "eos", "spine": "huawei_vrp"}))
    bom = bill_of_materials(plan)
    assert bom.switches_by_role() == {"leaf": 32, "spine": 16}
    assert dict(bom.links) == {"fabric": 1024, "host": 1024}
    # one optic per cable end: both ends of 1024 fabric links and 1024 host links
    assert dict(bom.optics) == {"800G-2xDR4": 4 * 1024}
    assert bom.optics_power_w == pytest.approx(4096 * 16.0)
    assert bom.switch_power_w == pytest.approx(48 * 1_100.0)  # 64x800G = 51.2T class
    assert bom.gpus == 1024 and bom.hosts == 128
    text = bom.render()
    assert "DCS-7060X6-64PE" in text and "CloudEngine 51.2T 64x800G" in text and "118.3 kW" in text


def test_bom_of_a_multisite_build_counts_coherent_optics_and_amplifiers():
    plans = _three_sites(rate_gbps=800)
    bom = bill_of_materials(plans[-1])
    assert bom.switches_by_role() == {"dci": 6}
    assert bom.links["dci"] == 12 and bom.links["fabric"] == 24
    assert bom.optics["800G-ZR+"] == 24 and bom.amplifiers == 5 and bom.spans == 2 and bom.channels == 12
    total = bill_of_materials(plans)
    assert total.gpus == 1024 and total.switches_by_role()["dci"] == 6
    assert "Optical line: 2 spans, 481 km, 5 inline amplifiers, 12 wavelengths" in total.render()


# ------------------------------------------------------------------------------------------ database


@pytest.mark.django_db
def test_persist_round_trip_counts_and_bom():
    plan = plan_fabric(params(gpus=128, radix=8, gpus_per_host=4, platforms={"superspine": "huawei_vrp"}))
    fabric = persist_plan(plan)
    counts = plan.counts()
    assert Device.objects.filter(fabric=fabric).count() == counts["devices"] == 80
    assert Interface.objects.filter(device__fabric=fabric).count() == counts["interfaces"] == 80 * 8
    assert Link.objects.filter(a_interface__device__fabric=fabric).count() == counts["links"]
    assert GpuHost.objects.filter(fabric=fabric).count() == 32
    assert GpuNic.objects.filter(host__fabric=fabric).count() == counts["gpu_nics"] == 128
    assert Pod.objects.filter(fabric=fabric, kind="pod").count() == 8
    assert fabric.parameters["radix"] == 8 and fabric.kind == "rail-optimized"
    # NIC rows point at their rail's leaf; links keep the planned /31s; catalogue rows are reused by name
    for nic in GpuNic.objects.select_related("leaf_interface__device")[:20]:
        assert nic.leaf_interface.device.rail == nic.rail and nic.leaf_interface.device.role == "leaf"
    link = Link.objects.select_related("a_interface__device", "b_interface__device").first()
    assert link.a_interface.device.role == "leaf" and link.b_interface.device.role == "spine"
    assert (
        ipaddress.ip_interface(link.a_interface.address).network
        == ipaddress.ip_interface(link.b_interface.address).network
    )
    dev = Device.objects.get(hostname=plan.devices[0].hostname)
    assert (dev.eapi_port, dev.ssh_port, dev.gnmi_port, dev.asn) == (443, 10022, 6030, plan.devices[0].asn)
    assert Transceiver.objects.get(name="800G-2xDR4").typical_power_w == 16.0
    assert bill_of_materials(fabric).as_dict() | {"switches": None} == bill_of_materials(plan).as_dict() | {
        "switches": None
    }


@pytest.mark.django_db
def test_persist_refuses_duplicates_and_replaces_on_request():
    plan = plan_fabric(params(gpus=64, radix=16))
    persist_plan(plan)
    with pytest.raises(GeneratorError, match="name: fabric 't' already exists"):
        persist_plan(plan)
    other = plan_fabric(params(name="u", gpus=64, radix=16))  # same default management network
    with pytest.raises(GeneratorError, match=r"management addresses 127\.100\.0\.1"):
        persist_plan(other)
    assert not Fabric.objects.filter(name="u").exists()  # nothing half-written
    before = Interface.objects.count()
    persist_plan(plan, replace=True)
    assert Interface.objects.count() == before and Fabric.objects.filter(name="t").count() == 1
    counts = delete_fabric("t")
    assert counts["interfaces"] == before and Interface.objects.count() == 0 and not Fabric.objects.exists()


@pytest.mark.django_db
def test_persist_multisite_with_optical_layer():
    plans = _three_sites()
    fabrics = persist_plans(plans)
    assert [f.kind for f in fabrics] == ["rail-optimized"] * 3 + ["dci-backbone"]
    assert OpticalSpan.objects.get(name="dci-sjc1-chi1").amplifier_count == 4
    ch = OpticalChannel.objects.get(name="dci-sjc1-ash1-ch01")
    assert list(ch.spans.values_list("name", flat=True)) == ["dci-chi1-ash1", "dci-sjc1-chi1"]
    assert ch.link.kind == "dci" and ch.link.a_interface.device.role == "dci"
    uplink = Link.objects.filter(b_interface__device__role="dci", kind="fabric").select_related("a_interface__device")
    assert uplink.count() == 24 and {lk.a_interface.device.role for lk in uplink} == {"superspine"}
    db_bom = bill_of_materials([f.name for f in fabrics]).as_dict()
    plan_bom = bill_of_materials(plans).as_dict()
    for key in ("switches_by_role", "links", "optics", "spans", "amplifiers", "channels", "total_power_w", "gpus"):
        assert db_bom[key] == plan_bom[key], key


# ------------------------------------------------------------------------------------------ command


@pytest.mark.django_db
def test_command_generate_dry_run_writes_nothing(capsys):
    call_command("fabric", "generate", "--name", "cli", "--gpus", "1024", "--radix", "64", "--speed", "800",
                 "--platform", "leaf=eos", "--platform", "spine=huawei_vrp", "--dry-run")  # fmt: skip
    out = capsys.readouterr().out
    assert "Bill of materials: cli" in out and "planned (dry run, nothing written)" in out
    assert not Fabric.objects.exists()


@pytest.mark.django_db
def test_command_generate_then_bom(capsys):
    call_command("fabric", "generate", "--name", "cli", "--gpus", "2048", "--radix", "64", "--tiers", "3")
    assert Device.objects.filter(fabric__name="cli", role="superspine").count() == 64
    capsys.readouterr()
    call_command("fabric", "bom", "cli")
    out = capsys.readouterr().out
    assert "superspine" in out and "2,048 GPUs on 256 hosts" in out


@pytest.mark.django_db
def test_command_multisite(capsys):
    call_command("fabric", "generate", "--name", "ms", "--gpus", "256", "--radix", "16", "--speed", "400",
                 "--sites", "sjc1=San Jose", "--sites", "ash1=Ashburn", "--span", "sjc1:ash1:120",
                 "--dci-rate", "800", "--dci-wavelengths", "2")  # fmt: skip
    assert set(Fabric.objects.values_list("name", flat=True)) == {"ms-sjc1", "ms-ash1", "ms-dci"}
    assert OpticalSpan.objects.get().amplifier_count == 1 and OpticalChannel.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["generate", "--name", "x", "--gpus", "100", "--radix", "64"], "gpus: 100 is not a multiple"),
        (["generate", "--name", "x", "--gpus", "64", "--platform", "leaf"], "--platform: expected KEY=VALUE"),
        (["generate", "--name", "x", "--gpus", "64", "--sites", "a"], "--sites: give two or more"),
        (["generate", "--name", "x", "--gpus", "64", "--sites", "a", "--sites", "b", "--span", "a:b"], "--span:"),
        (["bom", "nope"], "fabric 'nope' does not exist"),
    ],
)
def test_command_errors_are_command_errors(argv, fragment):
    with pytest.raises(CommandError) as exc:
        call_command("fabric", *argv)
    assert fragment in str(exc.value)


def test_command_help_renders_every_subcommand():
    from fabric_ops.topology.management.commands.fabric import SUBCOMMANDS, Command

    text = Command().create_parser("manage.py", "fabric").format_help()
    for name in SUBCOMMANDS:
        assert name in text

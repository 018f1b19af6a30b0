# ruff: noqa: E501  (the validation table reads best one case per line)
"""YAML inventory: validation (every error kind), import, idempotence, dry run, export determinism and round trip."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from fabric_ops.errors import InventoryError
from fabric_ops.topology.inventory import export_inventory, import_inventory, validate
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
    Site,
    Transceiver,
)

LAB = Path(settings.BASE_DIR) / "inventory" / "lab.yml"
pytestmark = pytest.mark.django_db


def canonical_dump() -> dict[str, list]:
    """Every row of every topology model by natural keys (no primary keys), sorted: equal dumps = identical model.

    Written with plain ORM queries, independently of the importer's own loader, so it can catch the importer's bugs.
    """
    iface = ("device__hostname", "name")
    return {
        "transceivers": sorted(Transceiver.objects.values_list(
            "name", "form_factor", "speed_gbps", "lanes", "reach_m", "typical_power_w", "coherent")),
        "sites": sorted(Site.objects.values_list("name", "city", "latitude", "longitude")),
        "spans": sorted(OpticalSpan.objects.values_list(
            "name", "a_site__name", "b_site__name", "length_km", "loss_db", "amplifier_count", "state")),
        "fabrics": sorted((f.name, f.kind, f.site.name if f.site else None, f.description, repr(sorted(f.parameters.items())))
                          for f in Fabric.objects.select_related("site")),
        "pods": sorted(Pod.objects.values_list("fabric__name", "name", "kind", "index")),
        "devices": sorted(Device.objects.values_list(
            "hostname", "fabric__name", "site__name", "pod__name", "role", "platform", "model", "lifecycle", "rail",
            "index", "mgmt_address", "eapi_port", "ssh_port", "gnmi_port", "credential", "loopback", "asn")),
        "interfaces": sorted(Interface.objects.values_list(
            *iface, "speed_gbps", "lanes", "admin_up", "mtu", "address", "description", "transceiver__name")),
        "links": sorted(Link.objects.values_list(
            *("a_interface__" + f for f in iface), *("b_interface__" + f for f in iface), "kind", "capacity_gbps",
            "state")),
        "hosts": sorted(GpuHost.objects.values_list("name", "fabric__name", "pod__name", "gpus", "index")),
        "nics": sorted(GpuNic.objects.values_list(
            "host__name", "rail", "name", "speed_gbps", *("leaf_interface__" + f for f in iface))),
        "channels": sorted((c.name, c.link.a_interface.device.hostname, c.link.a_interface.name, c.frequency_ghz,
                            c.rate_gbps, c.modulation, tuple(sorted(s.name for s in c.spans.all())))
                           for c in OpticalChannel.objects.select_related("link__a_interface__device")),
    }  # fmt: skip


def wipe() -> None:
    for model in (Fabric, OpticalSpan, Site, Transceiver):  # cascades take the rest
        model.objects.all().delete()


# -- the sample lab ---------------------------------------------------------------------------------------------------
def test_lab_imports_with_expected_counts():
    report = import_inventory(LAB)
    assert report.changed and not report.dry_run
    assert set(Fabric.objects.values_list("name", "kind")) == {
        ("sjc-ai", "rail-optimized"),
        ("lax-ai", "rail-optimized"),
        ("dci", "dci-backbone"),
    }
    assert Device.objects.count() == 28
    assert Device.objects.filter(role="leaf").count() == 16
    assert Device.objects.filter(role="spine").count() == 8
    assert Device.objects.filter(role="dci").count() == 4
    # two vendors, and each site mixes them
    for site in ("sjc", "lax"):
        platforms = set(Device.objects.filter(site__name=site).values_list("platform", flat=True))
        assert platforms == {"eos", "huawei_vrp"}, site
    assert Interface.objects.count() == 240
    assert Link.objects.count() == 88
    assert Link.objects.filter(kind="dci").count() == 8
    assert GpuHost.objects.count() == 8 and GpuNic.objects.count() == 64
    assert OpticalSpan.objects.count() == 2 and OpticalChannel.objects.count() == 8
    assert all(span.amplifier_count > 0 for span in OpticalSpan.objects.all())
    assert all(ch.link.kind == "dci" for ch in OpticalChannel.objects.select_related("link"))
    lab_net = ipaddress.ip_network("127.64.0.0/16")
    mgmt = list(Device.objects.values_list("mgmt_address", flat=True))
    assert len(set(mgmt)) == 28 and all(ipaddress.ip_address(a) in lab_net for a in mgmt)
    assert set(Device.objects.values_list("eapi_port", "ssh_port", "gnmi_port", "credential")) == {
        (443, 10022, 6030, "lab")
    }
    # every fabric port is addressed from its link's /31, both ends in the same subnet
    for link in Link.objects.select_related("a_interface", "b_interface"):
        a = ipaddress.ip_interface(link.a_interface.address)
        b = ipaddress.ip_interface(link.b_interface.address)
        assert a.network == b.network and a.network.prefixlen == 31 and a != b
    # NIC n of every host is on the rail-n leaf
    for nic in GpuNic.objects.select_related("leaf_interface__device"):
        assert nic.leaf_interface.device.rail == nic.rail and nic.leaf_interface.device.role == "leaf"


def test_reimport_is_idempotent_and_reports_what_changed(tmp_path):
    import_inventory(LAB)
    again = import_inventory(LAB)
    assert not again.changed
    assert "no changes" in again.summary()

    text = LAB.read_text()
    # one port setting, one host removed, one device added (with a port), one link state changed
    text = text.replace(
        '          - {name: "Ethernet[1-4]/1", description: gpu hosts}\n          - {name: "Ethernet[5-8]/1", '
        "description: spines}\n      - hostname: sjc-leaf2",
        '          - {name: "Ethernet[1-4]/1", description: gpu hosts}\n          - {name: "Ethernet[5-8]/1", '
        "description: spines, mtu: 4200}\n      - hostname: sjc-leaf2",
        1,
    )
    start = text.index("      - name: sjc-gpu4\n")
    end = text.index("  - name: lax-ai\n")
    text = text[:start] + text[end:]
    text = text.replace(
        "    links:\n      # leaf i uplink j",
        "      - hostname: sjc-border1\n        role: border-leaf\n        platform: eos\n"
        "        mgmt_address: 127.64.1.99\n        interfaces:\n          - {name: Ethernet1/1}\n"
        "    links:\n      # leaf i uplink j",
        1,
    )
    text = text.replace(
        "b: sjc-spine1:400GE1/0/1, subnet: 10.1.0.0/31}", "b: sjc-spine1:400GE1/0/1, subnet: 10.1.0.0/31, state: down}"
    )
    changed = tmp_path / "lab.yml"
    changed.write_text(text)
    report = import_inventory(changed)
    assert report.counts() == {
        "Device": (1, 0, 0),
        "Interface": (1, 4, 0),
        "Link": (0, 1, 0),
        "GpuHost": (0, 0, 1),
        "GpuNic": (0, 0, 8),
    }
    assert report.created["Device"] == ["sjc-border1"]
    assert report.updated["Interface"] == [f"sjc-leaf1:Ethernet{n}/1" for n in range(5, 9)]
    assert report.updated["Link"] == ["sjc-leaf1:Ethernet5/1 <-> sjc-spine1:400GE1/0/1"]
    assert report.deleted["GpuHost"] == ["sjc-gpu4"]
    assert Interface.objects.get(device__hostname="sjc-leaf1", name="Ethernet6/1").mtu == 4200
    assert not GpuHost.objects.filter(name="sjc-gpu4").exists()
    assert Device.objects.get(hostname="sjc-border1").fabric.name == "sjc-ai"
    assert not import_inventory(changed).changed
    # and back: the original file restores the original rows
    import_inventory(LAB)
    before = canonical_dump()
    wipe()
    import_inventory(LAB)
    assert canonical_dump() == before


def _swap(text: str, x: str, y: str) -> str:
    assert x in text and y in text, (x, y)
    return text.replace(x, "\0").replace(y, x).replace("\0", y)


def test_swaps_and_recabling_in_one_import(tmp_path):
    """Unique and one-to-one columns trade places inside one transaction (two-phase, delete before create)."""
    import_inventory(LAB)
    original = canonical_dump()
    text = LAB.read_text()
    text = _swap(text, "mgmt_address: 127.64.1.11\n", "mgmt_address: 127.64.1.12\n")
    text = _swap(text, "b: sjc-spine1:400GE1/0/1,", "b: sjc-spine1:400GE1/0/2,")
    text = _swap(text, "{rail: 1, leaf: sjc-leaf1:Ethernet1/1}", "{rail: 1, leaf: sjc-leaf1:Ethernet2/1}")
    text = _swap(text, "link: sjc-dci1:Ethernet5/1,", "link: sjc-dci1:Ethernet6/1,")
    path = tmp_path / "swapped.yml"
    path.write_text(text)
    report = import_inventory(path)
    assert report.counts() == {
        "Device": (0, 2, 0),
        "Interface": (0, 2, 0),  # the spine ports' addresses follow their new links' subnets
        "Link": (2, 0, 2),
        "GpuNic": (0, 2, 0),
        "OpticalChannel": (0, 2, 0),
    }
    assert Device.objects.get(hostname="sjc-leaf1").mgmt_address == "127.64.1.12"
    assert GpuNic.objects.get(host__name="sjc-gpu1", rail=1).leaf_interface.name == "Ethernet2/1"
    assert OpticalChannel.objects.get(name="sjc-lax-ch01").link.a_interface.name == "Ethernet6/1"
    spine_port = Interface.objects.get(device__hostname="sjc-spine1", name="400GE1/0/2")
    assert spine_port.address == "10.1.0.1/31" and spine_port.link_as_b.a_interface.device.hostname == "sjc-leaf1"
    assert not import_inventory(path).changed
    import_inventory(LAB)
    assert canonical_dump() == original


def test_dry_run_writes_nothing(tmp_path):
    report = import_inventory(LAB, dry_run=True)
    assert report.dry_run and report.counts()["Device"] == (28, 0, 0)
    assert Device.objects.count() == 0 and Fabric.objects.count() == 0 and Transceiver.objects.count() == 0
    import_inventory(LAB)
    before = canonical_dump()
    smaller = tmp_path / "smaller.yml"
    smaller.write_text(LAB.read_text().replace("      - name: sjc-gpu1\n", "      - name: sjc-gpu9\n"))
    report = import_inventory(smaller, dry_run=True)
    assert report.created["GpuHost"] == ["sjc-gpu9"] and report.deleted["GpuHost"] == ["sjc-gpu1"]
    assert canonical_dump() == before


# -- export -----------------------------------------------------------------------------------------------------------
def test_export_import_round_trips_to_an_identical_model(tmp_path):
    import_inventory(LAB)
    before = canonical_dump()
    exported = export_inventory()
    path = tmp_path / "exported.yml"
    path.write_text(exported)
    assert validate(path) == []
    assert not import_inventory(path).changed  # the export describes exactly what is there
    wipe()
    assert Device.objects.count() == 0
    import_inventory(path)
    assert canonical_dump() == before


def test_export_is_deterministic_and_compact(tmp_path):
    import_inventory(LAB)
    first = export_inventory()
    assert export_inventory() == first
    # rows inserted in another order (the export lists dci first, lab.yml lists it last) export the same bytes
    path = tmp_path / "exported.yml"
    path.write_text(first)
    wipe()
    import_inventory(path)
    assert export_inventory() == first
    assert "'Ethernet[1-4]/1'" in first  # ranges fold
    assert "subnet: 10.1.0.0/31" in first  # p2p addresses ride on links
    assert len(first.splitlines()) < len(LAB.read_text().splitlines())


def test_export_of_one_fabric_reimports_without_touching_others(tmp_path):
    import_inventory(LAB)
    before = canonical_dump()
    text = export_inventory(["sjc-ai"])
    assert "lax-leaf1" not in text and "sjc-dci1" not in text  # cross-fabric links are left out
    path = tmp_path / "sjc.yml"
    path.write_text(text)
    assert not import_inventory(path).changed
    assert canonical_dump() == before
    # dropping a leaf from this file deletes it (and its links and NICs) in sjc-ai only
    without_device = re.sub(r"  - hostname: sjc-leaf8\n(    .*\n)+", "", text)
    path.write_text(without_device)
    problems = validate(path)
    assert len(problems) == 8 and all("sjc-leaf8" in p.message for p in problems)  # 4 links and 4 NICs name it
    path.write_text("".join(ln for ln in without_device.splitlines(keepends=True) if "sjc-leaf8" not in ln))
    report = import_inventory(path)
    assert report.deleted["Device"] == ["sjc-leaf8"]
    assert len(report.deleted["Link"]) == 4 and len(report.deleted["GpuNic"]) == 4
    assert Device.objects.filter(fabric__name="lax-ai").count() == 12
    assert Interface.objects.filter(device__fabric__name="lax-ai").count() == 104
    assert (
        Link.objects.filter(a_interface__device__hostname="sjc-spine1", b_interface__device__fabric__name="dci").count()
        == 2
    )
    with pytest.raises(InventoryError, match="unknown fabric 'nope'"):
        export_inventory(["nope"])


# -- validation: one case per error kind -----------------------------------------------------------------------------
BASE = """\
version: 1
sites:
  - {name: tst, city: Testville}
transceivers:
  - {name: T-400G, form_factor: QSFP-DD, speed_gbps: 400, reach_m: 500, typical_power_w: 10.0}
optical_spans:
  - {name: tst-sjc, a_site: tst, b_site: sjc, length_km: 80.0, loss_db: 17.6, amplifier_count: 1}
fabrics:
  - name: t1
    kind: rail-optimized
    site: tst
    pods:
      - {name: p1}
    defaults:
      credential: lab
      interface: {speed_gbps: 400, transceiver: T-400G}
    devices:
      - hostname: t1-leaf1
        role: leaf
        platform: eos
        pod: p1
        rail: 1
        mgmt_address: 127.64.200.1
        loopback: 10.200.255.1
        asn: 65501
        interfaces:
          - {name: "Ethernet[1-2]/1"}
          - {name: Ethernet3/1}
      - hostname: t1-spine1
        role: spine
        platform: huawei_vrp
        mgmt_address: 127.64.200.2
        loopback: 10.200.255.2
        asn: 65500
        interfaces:
          - {name: 400GE1/0/1}
          - {name: 400GE1/0/2}
      - hostname: t1-dci1
        role: dci
        platform: eos
        mgmt_address: 127.64.200.3
        interfaces:
          - {name: Ethernet1/1}
    links:
      - {a: "t1-leaf1:Ethernet3/1", b: "t1-spine1:400GE1/0/1", subnet: 10.200.0.0/31}
      - {a: "t1-spine1:400GE1/0/2", b: "t1-dci1:Ethernet1/1", kind: dci, subnet: 10.200.0.2/31}
    gpu_hosts:
      - name: t1-gpu1
        pod: p1
        nics:
          - {rail: 1, leaf: "t1-leaf1:Ethernet1/1"}
optical_channels:
  - {name: t1-ch1, link: "t1-dci1:Ethernet1/1", spans: [tst-sjc], frequency_ghz: 193100.0}
"""

LEAF_IFACES = '          - {name: "Ethernet[1-2]/1"}\n          - {name: Ethernet3/1}\n'
DCI_IFACES = "          - {name: Ethernet1/1}\n    links:\n"
LINK1 = '      - {a: "t1-leaf1:Ethernet3/1", b: "t1-spine1:400GE1/0/1", subnet: 10.200.0.0/31}'

# (case id, [(old, new)...] with "#!" marking the line the problem must name, expected key, message fragment)
CASES = [
    ("unknown-platform", [("platform: huawei_vrp\n", "platform: junos #!\n")],
     "fabrics[t1].devices[t1-spine1].platform", "unknown value 'junos'"),
    ("unknown-role", [("        role: spine\n", "        role: tor #!\n")],
     "fabrics[t1].devices[t1-spine1].role", "unknown value 'tor'"),
    ("unknown-fabric-kind", [("    kind: rail-optimized\n", "    kind: torus #!\n")], "fabrics[t1].kind", "torus"),
    ("unknown-link-kind", [("kind: dci, subnet", "kind: cable, subnet"), ("kind: cable, subnet: 10.200.0.2/31}",
                                                                          "kind: cable, subnet: 10.200.0.2/31} #!")],
     "fabrics[t1].links[1].kind", "unknown value 'cable'"),
    ("duplicate-hostname", [("      - hostname: t1-dci1\n", "      - hostname: t1-spine1 #!\n")],
     "fabrics[t1].devices[t1-spine1].hostname", "duplicate hostname 't1-spine1' (first defined on line 29)"),
    ("duplicate-hostname-in-db", [("      - hostname: t1-dci1\n", "      - hostname: sjc-leaf1 #!\n")],
     "fabrics[t1].devices[sjc-leaf1].hostname", "already exists in fabric 'sjc-ai'"),
    ("duplicate-interface", [(LEAF_IFACES, LEAF_IFACES + "          - {name: Ethernet2/1} #!\n")],
     "fabrics[t1].devices[t1-leaf1].interfaces[Ethernet2/1].name", "duplicate interface 't1-leaf1:Ethernet2/1'"),
    ("link-missing-device", [(LINK1, LINK1.replace("t1-spine1:", "t1-spine9:") + " #!")],
     "fabrics[t1].links[0].b", "link to a missing device 't1-spine9'"),
    ("link-missing-interface", [(LINK1, LINK1.replace("400GE1/0/1", "400GE1/0/9") + " #!")],
     "fabrics[t1].links[0].b", "link to a missing interface 't1-spine1:400GE1/0/9'"),
    ("link-to-itself", [(LINK1, LINK1.replace("t1-spine1:400GE1/0/1", "t1-leaf1:Ethernet3/1") + " #!")],
     "fabrics[t1].links[0].b", "cannot join an interface to itself"),
    ("interface-used-twice-links", [(LINK1, LINK1 + '\n      - {a: "t1-leaf1:Ethernet2/1", b: "t1-spine1:400GE1/0/1"} #!')],
     "fabrics[t1].links[1].b", "interface t1-spine1:400GE1/0/1 is used twice (already used by the link at fabrics[t1].links[0] on line 45)"),
    ("interface-used-twice-nic", [('leaf: "t1-leaf1:Ethernet1/1"}', 'leaf: "t1-leaf1:Ethernet3/1"} #!')],
     "fabrics[t1].gpu_hosts[t1-gpu1].nics[0].leaf", "interface t1-leaf1:Ethernet3/1 is used twice"),
    ("nic-missing-interface", [('leaf: "t1-leaf1:Ethernet1/1"}', 'leaf: "t1-leaf1:Ethernet7/1"} #!')],
     "fabrics[t1].gpu_hosts[t1-gpu1].nics[0].leaf", "NIC attached to a missing interface"),
    ("mgmt-collision", [("mgmt_address: 127.64.200.3\n", "mgmt_address: 127.64.200.1 #!\n")],
     "fabrics[t1].devices[t1-dci1].mgmt_address", "address collision: 127.64.200.1 is also t1-leaf1's"),
    ("mgmt-collision-db", [("mgmt_address: 127.64.200.3\n", "mgmt_address: 127.64.1.1 #!\n")],
     "fabrics[t1].devices[t1-dci1].mgmt_address", "127.64.1.1 is sjc-spine1's (in the database)"),
    ("loopback-collision", [("loopback: 10.200.255.2\n", "loopback: 10.200.255.1 #!\n")],
     "fabrics[t1].devices[t1-spine1].loopback", "address collision: 10.200.255.1 is also t1-leaf1 loopback"),
    ("p2p-collision", [(DCI_IFACES, "          - {name: Ethernet1/1}\n          - {name: Ethernet2/1, address: "
                                    "10.200.0.1/31} #!\n    links:\n")],
     "fabrics[t1].devices[t1-dci1].interfaces[Ethernet2/1].address", "10.200.0.1 is also t1-spine1:400GE1/0/1"),
    ("p2p-collision-db", [(DCI_IFACES, "          - {name: Ethernet1/1}\n          - {name: Ethernet2/1, address: "
                                       "10.1.0.1/31} #!\n    links:\n")],
     "fabrics[t1].devices[t1-dci1].interfaces[Ethernet2/1].address", "10.1.0.1 is also sjc-spine1:400GE1/0/1 (in the database)"),
    ("subnet-conflict", [("          - {name: 400GE1/0/1}\n", "          - {name: 400GE1/0/1, address: 10.200.0.5/31}\n"),
                         (LINK1, LINK1 + " #!")],
     "fabrics[t1].links[0].subnet", "has address 10.200.0.5/31 but subnet 10.200.0.0/31 gives the b end 10.200.0.1/31"),
    ("unknown-key-typo", [("        asn: 65500\n", "        asm: 65500 #!\n")],
     "fabrics[t1].devices[t1-spine1].asm", "unknown key (did you mean 'asn'?)"),
    ("secret-in-inventory", [("        asn: 65500\n", "        asn: 65500\n        password: hunter2 #!\n")],
     "fabrics[t1].devices[t1-spine1].password", "secrets never go in the inventory"),
    ("wrong-type", [("          - {name: 400GE1/0/2}\n", "          - {name: 400GE1/0/2, speed_gbps: fast} #!\n")],
     "fabrics[t1].devices[t1-spine1].interfaces[400GE1/0/2].speed_gbps", "expected an integer, got str 'fast'"),
    ("wrong-type-bool", [("          - {name: 400GE1/0/2}\n", "          - {name: 400GE1/0/2, admin_up: 1} #!\n")],
     "fabrics[t1].devices[t1-spine1].interfaces[400GE1/0/2].admin_up", "expected true or false"),
    ("wrong-type-list", [("    pods:\n      - {name: p1}\n", "    pods: p1 #!\n")], "fabrics[t1].pods", "expected a list"),
    ("missing-required-key", [("      - hostname: t1-spine1\n        role: spine\n", "      - hostname: t1-spine1 #!\n")],
     "fabrics[t1].devices[t1-spine1].role", "missing required key"),
    ("missing-required-speed", [("      interface: {speed_gbps: 400, transceiver: T-400G}\n",
                                 "      interface: {transceiver: T-400G}\n"),
                                ("          - {name: 400GE1/0/2}\n", "          - {name: 400GE1/0/2} #!\n")],
     "fabrics[t1].devices[t1-spine1].interfaces[400GE1/0/2].speed_gbps", "missing required key"),
    ("unknown-site", [("    site: tst\n", "    site: nowhere #!\n")], "fabrics[t1].site", "unknown site 'nowhere'"),
    ("unknown-pod", [("        pod: p1\n        rail: 1\n", "        pod: p9 #!\n        rail: 1\n")],
     "fabrics[t1].devices[t1-leaf1].pod", "unknown pod 'p9' in fabric 't1'"),
    ("unknown-transceiver", [("          - {name: Ethernet3/1}\n", "          - {name: Ethernet3/1, transceiver: X-9} #!\n")],
     "fabrics[t1].devices[t1-leaf1].interfaces[Ethernet3/1].transceiver", "unknown transceiver 'X-9'"),
    ("unknown-span", [("spans: [tst-sjc], frequency_ghz: 193100.0}", "spans: [tst-nyc], frequency_ghz: 193100.0} #!")],
     "optical_channels[t1-ch1].spans", "unknown optical span 'tst-nyc'"),
    ("channel-without-link", [('link: "t1-dci1:Ethernet1/1"', 'link: "t1-leaf1:Ethernet2/1"'),
                              ("frequency_ghz: 193100.0}", "frequency_ghz: 193100.0} #!")],
     "optical_channels[t1-ch1].link", "no link in this file ends at t1-leaf1:Ethernet2/1"),
    ("bad-range", [('{name: "Ethernet[1-2]/1"}', '{name: "Ethernet[2-1]/1"} #!')],
     "fabrics[t1].devices[t1-leaf1].interfaces[Ethernet[2-1]/1].name", "runs backwards"),
    ("bad-address", [("loopback: 10.200.255.2\n", "loopback: 10.200.255.256 #!\n")],
     "fabrics[t1].devices[t1-spine1].loopback", "invalid address"),
    ("bad-credential-name", [("      credential: lab\n", "      credential: Lab Secret! #!\n")],
     "fabrics[t1].defaults.credential", "not valid"),
    ("duplicate-yaml-key", [("        asn: 65500\n", "        asn: 65500\n        asn: 65501 #!\n")],
     "fabrics[0].devices[1].asn", "duplicate key (first given on line 34)"),
    ("parameters-not-json", [("    kind: rail-optimized\n", "    kind: rail-optimized\n    parameters: {built: 2026-11-27} #!\n")],
     "fabrics[t1].parameters", "must be plain JSON data"),
    ("yaml-syntax", [("    site: tst\n", "    site: tst: x #!\n")], "<yaml>", "YAML syntax error"),
]  # fmt: skip


def _case_file(tmp_path: Path, edits: list[tuple[str, str]]) -> tuple[Path, int]:
    text = BASE
    for old, new in edits:
        assert old in text, f"test bug: {old!r} not in BASE"
        text = text.replace(old, new, 1)
    marked = [i for i, line in enumerate(text.splitlines(), start=1) if "#!" in line]
    assert len(marked) == 1, "test bug: mark exactly one line"
    path = tmp_path / "case.yml"
    path.write_text(text)
    return path, marked[0]


@pytest.fixture(scope="class")
def lab_in_db(django_db_setup, django_db_blocker):
    """The lab, imported and committed once for a class of tests; each test's own writes still roll back."""
    with django_db_blocker.unblock():
        created = import_inventory(LAB).created
        dump = canonical_dump()
    yield dump
    with django_db_blocker.unblock():  # remove only what this fixture added (another fixture may share the lab)
        for model in (Fabric, OpticalSpan, Site, Transceiver):
            model.objects.filter(name__in=created[model.__name__]).delete()


class TestValidationAgainstTheLab:
    """The lab is in the database, so "nothing written" and collisions with existing rows are meaningful."""

    def test_base_case_file_is_valid_and_imports(self, lab_in_db, tmp_path):
        path, _ = _case_file(tmp_path, [(LINK1, LINK1 + " #!")])
        assert validate(path) == []
        report = import_inventory(path)
        assert report.counts()["Device"] == (3, 0, 0)
        assert Interface.objects.get(device__hostname="t1-spine1", name="400GE1/0/1").address == "10.200.0.1/31"
        assert OpticalChannel.objects.get(name="t1-ch1").spans.get().b_site.name == "sjc"  # span to a DB site

    @pytest.mark.parametrize(("edits", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
    def test_validation_error_names_file_line_and_key(self, lab_in_db, tmp_path, edits, key, message):
        path, line = _case_file(tmp_path, edits)
        problems = validate(path)
        matching = [p for p in problems if p.key == key]
        assert matching, f"no problem for key {key}; got:\n" + "\n".join(problems)
        problem = matching[0]
        assert problem.file == str(path)
        assert problem.line == line, str(problem)
        assert message in problem.message, str(problem)
        assert str(problem).startswith(f"{path}:{line}: {key}: ")
        with pytest.raises(InventoryError) as excinfo:
            import_inventory(path)
        assert str(problem) in str(excinfo.value)
        assert canonical_dump() == lab_in_db

    def test_every_problem_is_reported_at_once(self, lab_in_db, tmp_path):
        path, _ = _case_file(
            tmp_path,
            [
                ("platform: huawei_vrp\n", "platform: junos\n"),
                ("        asn: 65501\n", "        asm: 65501\n"),
                (LINK1, LINK1.replace("400GE1/0/1", "400GE1/0/9") + " #!"),
            ],
        )
        problems = validate(path)
        assert [p.key for p in problems] == [
            "fabrics[t1].devices[t1-leaf1].asm",
            "fabrics[t1].devices[t1-spine1].platform",
            "fabrics[t1].links[0].b",
        ]
        with pytest.raises(InventoryError) as excinfo:
            import_inventory(path)
        assert len(excinfo.value.problems) == 3
        assert canonical_dump() == lab_in_db


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert [p.message for p in validate(empty)] == [
        "the inventory is empty; expected a mapping with `fabrics:` and friends"
    ]
    missing = validate(tmp_path / "nope.yml")
    assert len(missing) == 1 and missing[0].line == 1 and "cannot read inventory" in missing[0].message
    top = tmp_path / "list.yml"
    top.write_text("- a\n- b\n")
    assert "expected a mapping, got list" in validate(top)[0]


# -- command line -----------------------------------------------------------------------------------------------------
def test_command_validate_import_export(tmp_path, capsys):
    call_command("inventory", "validate", str(LAB))
    assert "valid" in capsys.readouterr().out
    call_command("inventory", "import", str(LAB), "--dry-run")
    assert "dry run" in capsys.readouterr().out and Device.objects.count() == 0
    call_command("inventory", "import", str(LAB))
    assert "Device: 28 created" in capsys.readouterr().out
    out = tmp_path / "out.yml"
    call_command("inventory", "export", "--fabric", "sjc-ai", "--fabric", "dci", "-o", str(out))
    assert capsys.readouterr().out == f"wrote {out}\n"
    call_command("inventory", "export", "--fabric", "sjc-ai", "dci", "-o", str(out.with_suffix(".2.yml")))
    assert out.with_suffix(".2.yml").read_text() == out.read_text()
    assert "name: sjc-ai" in out.read_text() and "name: lax-ai" not in out.read_text()
    assert capsys.readouterr().out == f"wrote {out.with_suffix('.2.yml')}\n"
    call_command("inventory", "export")
    assert capsys.readouterr().out == export_inventory()

    bad, line = _case_file(tmp_path, [("platform: huawei_vrp\n", "platform: junos #!\n")])
    with pytest.raises(CommandError) as excinfo:
        call_command("inventory", "import", str(bad))
    assert excinfo.value.returncode == 1
    err = capsys.readouterr().err
    assert f"{bad}:{line}: fabrics[t1].devices[t1-spine1].platform: unknown value 'junos'" in err
    with pytest.raises(CommandError):
        call_command("inventory", "validate", str(bad))


# -- generate: blocks --------------------------------------------------------------------------------------------------
MULTISITE = """\
version: 1
sites:
  - {name: ams, city: Amsterdam, lat: 52.37, lon: 4.9}
  - {name: fra, city: Frankfurt, lat: 50.11, lon: 8.68}
fabrics:
  - name: ams-ai
    kind: rail-optimized
    site: ams
    generate: {gpus: 64, radix: 16, port_speed_gbps: 400, platforms: {leaf: eos, spine: huawei_vrp}, credential: lab}
  - name: fra-ai
    kind: rail-optimized
    site: fra
    generate:
      gpus: 64
      radix: 16
      port_speed_gbps: 400
  - name: eu-dci
    kind: dci-backbone
    generate:
      spans: [[ams, fra, 440.0]]
      wavelengths_per_pair: 4
      uplinks_per_dci: 2
"""


def test_generate_block_expands_like_the_generator_and_round_trips(tmp_path):
    from fabric_ops.topology.generators import DciParams, FabricParams, plan_multisite

    path = tmp_path / "eu.yml"
    path.write_text(MULTISITE)
    report = import_inventory(path)
    plans = plan_multisite(
        [
            FabricParams(name="ams-ai", site="ams", city="Amsterdam", gpus=64, radix=16, port_speed_gbps=400,
                         platforms={"leaf": "eos", "spine": "huawei_vrp"}, credential="lab"),
            FabricParams(name="fra-ai", site="fra", city="Frankfurt", gpus=64, radix=16, port_speed_gbps=400),
        ],
        DciParams(spans=[("ams", "fra", 440.0)], name="eu-dci", wavelengths_per_pair=4, uplinks_per_dci=2),
    )  # fmt: skip
    expected = {k: sum(p.counts()[k] for p in plans) for k in ("devices", "interfaces", "links", "gpu_nics")}
    assert report.counts()["Device"] == (expected["devices"], 0, 0)
    assert report.counts()["Interface"] == (expected["interfaces"], 0, 0)
    assert report.counts()["Link"] == (expected["links"], 0, 0)
    assert report.counts()["GpuNic"] == (expected["gpu_nics"], 0, 0)
    assert OpticalChannel.objects.count() == 4 and OpticalSpan.objects.get().amplifier_count == 5
    assert set(Device.objects.filter(fabric__name="ams-ai", role="spine").values_list("platform", flat=True)) == {
        "huawei_vrp"
    }
    assert Fabric.objects.get(name="fra-ai").parameters["gpus"] == 64
    assert not import_inventory(path).changed  # the generator is deterministic
    before = canonical_dump()
    exported = tmp_path / "explicit.yml"
    exported.write_text(export_inventory())
    wipe()
    import_inventory(exported)
    assert canonical_dump() == before
    assert not import_inventory(path).changed  # explicit and generated forms describe the same rows
    # a changed parameter shows up as a change report
    path.write_text(MULTISITE.replace("wavelengths_per_pair: 4", "wavelengths_per_pair: 2"))
    report = import_inventory(path)
    assert report.deleted["OpticalChannel"] == ["eu-dci-ams-fra-ch03", "eu-dci-ams-fra-ch04"]
    assert OpticalChannel.objects.count() == 2


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("      radix: 16\n", "      radix: 15 #!\n"), "fabrics[fra-ai].generate.radix", "must be an even number"),
        (("      gpus: 64\n", "      gpu: 64 #!\n"), "fabrics[fra-ai].generate.gpu", "did you mean 'gpus'?"),
        (("      uplinks_per_dci: 2\n", "      uplinks_per_dci: 0 #!\n"), "fabrics[eu-dci].generate.uplinks_per_dci",
         "must be a positive integer"),
        (("    generate:\n      gpus: 64\n", "    generate: #!\n      gpus: 64\n      platforms: [eos]\n"),
         "fabrics[fra-ai].generate", "invalid generator parameters"),
    ],
    ids=["generator-error", "unknown-parameter", "dci-parameter", "wrong-shape"],
)  # fmt: skip
def test_generate_block_errors_name_the_parameter_line(tmp_path, edit, key, message):
    text = MULTISITE.replace(*edit)
    line = next(i for i, ln in enumerate(text.splitlines(), start=1) if "#!" in ln)
    path = tmp_path / "eu.yml"
    path.write_text(text)
    problems = validate(path)
    assert [(p.line, p.key) for p in problems] == [(line, key)], problems
    assert message in problems[0].message
    with pytest.raises(InventoryError):
        import_inventory(path)
    assert Device.objects.count() == 0


@pytest.mark.timeout(240)
def test_gpu10k_sample_imports_in_well_under_a_minute():
    import time

    started = time.monotonic()
    report = import_inventory(Path(settings.BASE_DIR) / "inventory" / "gpu10k.yml")
    elapsed = time.monotonic() - started
    assert sum(GpuHost.objects.values_list("gpus", flat=True)) == 10_000
    assert GpuNic.objects.count() == 10_000
    assert report.counts()["Device"] == (896, 0, 0) and Link.objects.count() == 20_480
    assert elapsed < 60, f"import took {elapsed:.1f} s"


# -- compact forms ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("Ethernet1/1", ["Ethernet1/1"]),
        ("Ethernet[1-3]/1", ["Ethernet1/1", "Ethernet2/1", "Ethernet3/1"]),
        ("400GE1/0/[1,3,5-6]", ["400GE1/0/1", "400GE1/0/3", "400GE1/0/5", "400GE1/0/6"]),
        ("swp[08-10]", ["swp08", "swp09", "swp10"]),
        ("E[1-2]/[1-2]", ["E1/1", "E1/2", "E2/1", "E2/2"]),
    ],
)
def test_ranges_expand_and_fold_back(pattern, names):
    from fabric_ops.topology.inventory.ranges import compact_names, expand

    assert expand(pattern) == names
    assert [n for p in compact_names(names) for n in expand(p)] == names


@pytest.mark.parametrize("pattern", ["Ethernet[3-1]/1", "Ethernet[a-b]", "Ethernet[1-2", "E[1-100000]"])
def test_bad_ranges_are_refused(pattern):
    from fabric_ops.topology.inventory.ranges import RangeError, expand

    with pytest.raises(RangeError):
        expand(pattern)


def test_merge_keys_defaults_and_explicit_null(tmp_path):
    path = tmp_path / "merge.yml"
    path.write_text(
        "sites: [{name: m1, city: M}]\n"
        "transceivers: [{name: X-400, form_factor: QSFP-DD, speed_gbps: 400, reach_m: 500, typical_power_w: 10.0}]\n"
        "fabrics:\n"
        "  - name: mf\n"
        "    kind: rail-optimized\n"
        "    site: m1\n"
        "    defaults: {platform: eos, interface: {speed_gbps: 400, transceiver: X-400}}\n"
        "    devices:\n"
        "      - &leaf\n"
        "        hostname: mf-leaf1\n"
        "        role: leaf\n"
        "        interfaces: [{name: 'Ethernet[1-2]/1'}, {name: Ethernet3/1, transceiver: null, mtu: null}]\n"
        "      - <<: *leaf\n"
        "        hostname: mf-leaf2\n"
        "        platfrm: eos\n"
    )
    problems = validate(path)
    assert [(p.line, p.key) for p in problems] == [(15, "fabrics[mf].devices[mf-leaf2].platfrm")]
    path.write_text(path.read_text().replace("        platfrm: eos\n", ""))
    import_inventory(path)
    assert Interface.objects.filter(device__hostname="mf-leaf2").count() == 3  # merged from the anchor
    port = Interface.objects.get(device__hostname="mf-leaf1", name="Ethernet3/1")
    assert port.transceiver is None and port.mtu == 9214  # null: "none" for a nullable key, default otherwise
    assert Interface.objects.get(device__hostname="mf-leaf1", name="Ethernet1/1").transceiver.name == "X-400"


def test_alias_bomb_and_alias_cycle_are_refused_quickly(tmp_path):
    import time

    from fabric_ops.topology.inventory import validate

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = tmp_path / "bomb.yml"
    bomb.write_text("\n".join(levels) + "\n")
    started = time.monotonic()
    problems = validate(bomb)
    assert time.monotonic() - started < 10
    assert any("aliases expand to far more data" in str(p) for p in problems)

    cycle = tmp_path / "cycle.yml"
    cycle.write_text("a: &a\n  b: *a\n")
    assert any("cycle" in str(p) for p in validate(cycle))

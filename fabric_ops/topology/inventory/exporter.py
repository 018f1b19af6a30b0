"""Write the database as inventory YAML that imports back to the same rows, byte-for-byte deterministic.

Compactness comes from the same rules the importer applies, run in reverse:
a value equal to its default is left out (fabric ``defaults`` are the most
common port settings), runs of identical ports fold into ranges, and a link
whose two ends hold the two addresses of one /31 is written with ``subnet``
instead of two interface addresses. Sorting is natural (Ethernet2 before
Ethernet10) so diffs of exported files stay small and readable.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter, defaultdict
from typing import Any

import yaml

from fabric_ops.errors import InventoryError

from ..models import Fabric, OpticalSpan, Site, Transceiver
from .ranges import compact_names, natural_key
from .schema import FIELDS, SCHEMA_VERSION, subnet_pair
from .spec import endpoint_str
from .state import load_current

__all__ = ["export_inventory"]

logger = logging.getLogger(__name__)

HEADER = (
    "# FabricOps inventory, schema version {v} (see docs/inventory.md). Exported by `manage.py inventory export`.\n"
)
DEVICE_DEFAULT_KEYS = ("lifecycle", "eapi_port", "ssh_port", "gnmi_port", "credential")
IFACE_DEFAULT_KEYS = ("speed_gbps", "lanes", "admin_up", "mtu", "transceiver")
BUILTIN = {k: f.default for k, f in FIELDS["device"].items()} | {
    f"if_{k}": f.default for k, f in FIELDS["interface"].items()
}


class Flow(dict):
    """A mapping written on one line: ``{name: Ethernet1/1, speed_gbps: 400}``."""


class FlowList(list):
    """A short list written on one line."""


try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper


class _InventoryDumper(_Dumper):
    pass


_InventoryDumper.add_representer(
    Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
)
_InventoryDumper.add_representer(
    FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _mode(values: list[Any]) -> Any:
    """Most common value; ties go to the smallest repr, so the choice never depends on row order."""
    counts = Counter(values)
    return min(counts.items(), key=lambda kv: (-kv[1], repr(kv[0])))[0]


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


def _ep_sort(ep: tuple[str, str]) -> tuple:
    return (natural_key(ep[0]), natural_key(ep[1]))


def export_inventory(fabric_names: list[str] | None = None) -> str:
    """YAML for ``fabric_names`` (all fabrics when None), with every transceiver, site and optical span.

    Links, NICs and channels that reach outside the exported fabrics are left
    out (they belong to a fabric not in the file); export every fabric for a
    complete copy.
    """
    if fabric_names:
        wanted = set(fabric_names)
        known = set(Fabric.objects.filter(name__in=wanted).values_list("name", flat=True))
        missing = sorted(wanted - known)
        if missing:
            raise InventoryError([f"export: unknown fabric {name!r}" for name in missing])
        catalogue = {
            "Transceiver": set(Transceiver.objects.values_list("name", flat=True)),
            "Site": set(Site.objects.values_list("name", flat=True)),
            "OpticalSpan": set(OpticalSpan.objects.values_list("name", flat=True)),
        }
        cur = load_current(wanted, catalogue=catalogue)
    else:
        cur = load_current(None)
    rows = {m: {k: v for k, (_, v) in table.items()} for m, table in cur.rows.items()}
    doc = _Document(rows).build()
    body = yaml.dump(doc, Dumper=_InventoryDumper, sort_keys=False, default_flow_style=False, width=4096,
                     allow_unicode=True)  # fmt: skip
    return HEADER.format(v=SCHEMA_VERSION) + body


class _Document:
    def __init__(self, rows: dict[str, dict[Any, dict[str, Any]]]):
        self.rows = rows
        self.fabrics = set(rows["Fabric"])
        self.devices = rows["Device"]
        self.interfaces = rows["Interface"]
        self.omitted: Counter = Counter()
        self.ports_of: dict[str, list[str]] = defaultdict(list)
        for host, name in self.interfaces:
            self.ports_of[host].append(name)

    def build(self) -> dict[str, Any]:
        rows = self.rows
        doc: dict[str, Any] = {"version": SCHEMA_VERSION}
        doc["transceivers"] = [self._transceiver(n, rows["Transceiver"][n]) for n in sorted(rows["Transceiver"])]
        doc["sites"] = [
            Flow(
                [("name", n), ("city", v["city"])]
                + [(k, v[f]) for k, f in (("lat", "latitude"), ("lon", "longitude")) if v[f] is not None]
            )
            for n, v in sorted(rows["Site"].items())
        ]
        doc["optical_spans"] = [self._span(n, rows["OpticalSpan"][n]) for n in sorted(rows["OpticalSpan"])]
        links = self._links()
        doc["fabrics"] = [self._fabric(name, links) for name in sorted(self.fabrics)]
        doc["optical_channels"] = self._channels(links)
        for what, count in sorted(self.omitted.items()):
            logger.warning("export: left out %d %s reaching outside the exported fabrics", count, what)
        return {k: v for k, v in doc.items() if v or k == "version"}

    # -- catalogues ---------------------------------------------------------------------------------------------
    @staticmethod
    def _transceiver(name: str, v: dict[str, Any]) -> Flow:
        out = Flow(name=name, form_factor=v["form_factor"], speed_gbps=v["speed_gbps"])
        if v["lanes"] != 8:
            out["lanes"] = v["lanes"]
        out.update(reach_m=v["reach_m"], typical_power_w=v["typical_power_w"])
        if v["coherent"]:
            out["coherent"] = True
        return out

    @staticmethod
    def _span(name: str, v: dict[str, Any]) -> Flow:
        out = Flow(name=name, a_site=v["a_site"], b_site=v["b_site"], length_km=v["length_km"], loss_db=v["loss_db"])
        if v["amplifier_count"]:
            out["amplifier_count"] = v["amplifier_count"]
        if v["state"] != "up":
            out["state"] = v["state"]
        return out

    # -- links (decided first: they decide which interface addresses become link subnets) -----------------------
    def _links(self) -> dict[str, list[tuple[Any, Flow]]]:
        """Exported links grouped by the fabric that lists them (the a end's)."""
        by_fabric: dict[str, list[tuple[Any, Flow]]] = defaultdict(list)
        self.subnet_ifaces: set[tuple[str, str]] = set()
        for key in sorted(self.rows["Link"], key=lambda k: (_ep_sort(k[0]), _ep_sort(k[1]))):
            v = self.rows["Link"][key]
            a, b = key
            if a[0] not in self.devices or b[0] not in self.devices:
                self.omitted["links"] += 1
                continue
            ia, ib = self.interfaces[a], self.interfaces[b]
            out = Flow(a=endpoint_str(a), b=endpoint_str(b))
            if ia["address"] and ib["address"]:
                net = str(ipaddress.ip_interface(ia["address"]).network)
                if subnet_pair(net) == (ia["address"], ib["address"]):
                    out["subnet"] = net
                    self.subnet_ifaces.update((a, b))
            if v["kind"] != "fabric":
                out["kind"] = v["kind"]
            if v["capacity_gbps"] != min(ia["speed_gbps"], ib["speed_gbps"]):
                out["capacity_gbps"] = v["capacity_gbps"]
            if v["state"] != "up":
                out["state"] = v["state"]
            by_fabric[self.devices[a[0]]["fabric"]].append((key, out))
        return by_fabric

    # -- fabrics ------------------------------------------------------------------------------------------------
    def _fabric(self, name: str, links: dict[str, list[tuple[Any, Flow]]]) -> dict[str, Any]:
        v = self.rows["Fabric"][name]
        out: dict[str, Any] = {"name": name, "kind": v["kind"]}
        if v["site"]:
            out["site"] = v["site"]
        if v["description"]:
            out["description"] = v["description"]
        if v["parameters"]:
            out["parameters"] = _sorted_json(v["parameters"])  # PostgreSQL jsonb does not keep key order
        pods = sorted(
            ((k[1], pv) for k, pv in self.rows["Pod"].items() if k[0] == name),
            key=lambda item: (item[1]["kind"], item[1]["index"], natural_key(item[0])),
        )
        if pods:
            out["pods"] = []
            positions: Counter = Counter()
            for pod_name, pv in pods:
                entry = Flow(name=pod_name)
                if pv["kind"] != "pod":
                    entry["kind"] = pv["kind"]
                if pv["index"] != positions[pv["kind"]]:
                    entry["index"] = pv["index"]
                positions[pv["kind"]] += 1
                out["pods"].append(entry)
        hostnames = sorted((h for h, dv in self.devices.items() if dv["fabric"] == name), key=natural_key)
        dev_defaults, if_defaults = self._defaults(hostnames)
        if dev_defaults or if_defaults:
            out["defaults"] = dict(dev_defaults)
            if if_defaults:
                out["defaults"]["interface"] = Flow(if_defaults)
        if hostnames:
            positions = Counter()
            out["devices"] = []
            for hostname in hostnames:
                out["devices"].append(self._device(hostname, v["site"], dev_defaults, if_defaults, positions))
        if links.get(name):
            out["links"] = [flow for _, flow in links[name]]
        hosts = sorted((h for h, hv in self.rows["GpuHost"].items() if hv["fabric"] == name), key=natural_key)
        if hosts:
            out["gpu_hosts"] = self._hosts(hosts)
        return out

    def _defaults(self, hostnames: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        if not hostnames:
            return {}, {}
        dev_defaults = {}
        for key in DEVICE_DEFAULT_KEYS:
            value = _mode([self.devices[h][key] for h in hostnames])
            if value != BUILTIN[key]:
                dev_defaults[key] = value
        ifaces = [self.interfaces[(h, n)] for h in hostnames for n in self.ports_of.get(h, ())]
        if_defaults = {}
        for key in IFACE_DEFAULT_KEYS:
            if not ifaces:
                break
            value = _mode([v[key] for v in ifaces])
            if value is not None and (key == "speed_gbps" or value != BUILTIN[f"if_{key}"]):
                if_defaults[key] = value
        return dev_defaults, if_defaults

    def _device(
        self,
        hostname: str,
        fabric_site: str | None,
        dev_defaults: dict[str, Any],
        if_defaults: dict[str, Any],
        positions: Counter,
    ) -> dict[str, Any]:
        v = self.devices[hostname]
        out: dict[str, Any] = {"hostname": hostname, "role": v["role"], "platform": v["platform"]}
        if v["model"]:
            out["model"] = v["model"]
        if v["site"] != fabric_site:
            out["site"] = v["site"]
        for key in ("pod", "rail"):
            if v[key] is not None:
                out[key] = v[key]
        group = (v["role"], v["pod"])
        if v["index"] != positions[group]:
            out["index"] = v["index"]
        positions[group] += 1
        for key in ("lifecycle", "mgmt_address", "eapi_port", "ssh_port", "gnmi_port", "credential", "loopback", "asn"):
            default = dev_defaults.get(key, BUILTIN[key])
            if v[key] != default:
                out[key] = v[key]
        names = sorted(self.ports_of.get(hostname, ()), key=natural_key)
        if names:
            out["interfaces"] = self._interfaces(hostname, names, if_defaults)
        return out

    def _interfaces(self, hostname: str, names: list[str], if_defaults: dict[str, Any]) -> list[Flow]:
        entries: list[tuple[str, tuple]] = []
        for name in names:
            v = self.interfaces[(hostname, name)]
            attrs = []
            for key in ("speed_gbps", "lanes", "admin_up", "mtu", "address", "description", "transceiver"):
                if key == "address" and (hostname, name) in self.subnet_ifaces:
                    continue
                default = if_defaults.get(key, BUILTIN[f"if_{key}"])
                if v[key] != default:
                    attrs.append((key, v[key]))
            entries.append((name, tuple(attrs)))
        out: list[Flow] = []
        i = 0
        while i < len(entries):
            attrs = entries[i][1]
            j = i + 1
            if not any(k == "address" for k, _ in attrs):
                while j < len(entries) and entries[j][1] == attrs:
                    j += 1
            for name in compact_names([n for n, _ in entries[i:j]]):
                out.append(Flow([("name", name), *attrs]))
            i = j
        return out

    def _hosts(self, hosts: list[str]) -> list[dict[str, Any]]:
        nics_by_host: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for (host, rail), nv in self.rows["GpuNic"].items():
            nics_by_host[host].append((rail, nv))
        out = []
        positions: Counter = Counter()
        for name in hosts:
            hv = self.rows["GpuHost"][name]
            entry: dict[str, Any] = {"name": name}
            if hv["pod"] is not None:
                entry["pod"] = hv["pod"]
            if hv["gpus"] != 8:
                entry["gpus"] = hv["gpus"]
            if hv["index"] != positions[hv["pod"]]:
                entry["index"] = hv["index"]
            positions[hv["pod"]] += 1
            nics = []
            for rail, nv in sorted(nics_by_host.get(name, [])):
                leaf = nv["leaf"]
                if leaf[0] not in self.devices:
                    self.omitted["GPU NICs"] += 1
                    continue
                nic = Flow(rail=rail)
                if nv["name"] != f"nic{rail}":
                    nic["name"] = nv["name"]
                if nv["speed_gbps"] != self.interfaces[leaf]["speed_gbps"]:
                    nic["speed_gbps"] = nv["speed_gbps"]
                nic["leaf"] = endpoint_str(leaf)
                nics.append(nic)
            if nics:
                entry["nics"] = nics
            out.append(entry)
        return out

    def _channels(self, links: dict[str, list[tuple[Any, Flow]]]) -> list[Flow]:
        exported = {key[0] for items in links.values() for key, _ in items}
        out = []
        for name in sorted(self.rows["OpticalChannel"], key=natural_key):
            v = self.rows["OpticalChannel"][name]
            if v["link"] not in exported:
                self.omitted["optical channels"] += 1
                continue
            entry = Flow(name=name, link=endpoint_str(v["link"]), spans=FlowList(v["spans"]))
            entry["frequency_ghz"] = v["frequency_ghz"]
            if v["rate_gbps"] != 400:
                entry["rate_gbps"] = v["rate_gbps"]
            if v["modulation"] != "DP-16QAM":
                entry["modulation"] = v["modulation"]
            out.append(entry)
        return out

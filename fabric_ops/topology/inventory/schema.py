"""The inventory schema (see docs/inventory.md) and the reader that turns a composed file into a :class:`Spec`.

This module checks each object on its own (keys, types, choices, ranges,
duplicates, defaults); :mod:`.checks` then checks the objects against each
other and against the database (references, interfaces used twice, address
collisions).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ..choices import DeviceRole, FabricKind, FormFactor, Lifecycle, LinkKind, LinkState, Platform, PodKind
from .fields import (
    CREDENTIAL_RE,
    HOSTNAME_RE,
    SLUG_RE,
    Field,
    item_list,
    plain,
    read_object,
)
from .loader import LMap
from .problems import Problems
from .ranges import RangeError, expand
from .spec import Spec

__all__ = ["FIELDS", "SCHEMA_VERSION", "parse_endpoint", "read_spec", "subnet_pair"]

SCHEMA_VERSION = 1


def _choices(enum) -> tuple[str, ...]:
    return tuple(enum.values)


NAME = Field("str", required=True, max_len=64)
SLUG = Field("str", required=True, max_len=64, pattern=SLUG_RE, pattern_hint="letters, digits, '-' and '_'")
HOSTNAME = Field(
    "str", required=True, max_len=63, pattern=HOSTNAME_RE, pattern_hint="a DNS label: letters, digits, '-'"
)
PORT = Field("int", minimum=1, maximum=65535)

FIELDS: dict[str, dict[str, Field]] = {
    "top": {
        "version": Field("int", default=SCHEMA_VERSION),
        "transceivers": Field("list"),
        "sites": Field("list"),
        "optical_spans": Field("list"),
        "fabrics": Field("list"),
        "optical_channels": Field("list"),
    },
    "transceiver": {
        "name": Field("str", required=True, max_len=40),
        "form_factor": Field("choice", required=True, choices=_choices(FormFactor)),
        "speed_gbps": Field("int", required=True, minimum=1),
        "lanes": Field("int", default=8, minimum=1, maximum=32767),
        "reach_m": Field("int", required=True, minimum=0),
        "typical_power_w": Field("float", required=True),
        "coherent": Field("bool", default=False),
    },
    "site": {
        "name": SLUG,
        "city": Field("str", required=True, max_len=100),
        "lat": Field("float", default=None),
        "lon": Field("float", default=None),
    },
    "span": {
        "name": NAME,
        "a_site": Field("str", required=True),
        "b_site": Field("str", required=True),
        "length_km": Field("float", required=True),
        "loss_db": Field("float", required=True),
        "amplifier_count": Field("int", default=0, minimum=0, maximum=32767),
        "state": Field("choice", default=LinkState.UP.value, choices=_choices(LinkState)),
    },
    "fabric": {
        "name": SLUG,
        "kind": Field("choice", required=True, choices=_choices(FabricKind)),
        "site": Field("str", default=None),
        "description": Field("str", default=""),
        "parameters": Field("map", default=None),
        "generate": Field("map"),
        "pods": Field("list"),
        "defaults": Field("map"),
        "devices": Field("list"),
        "links": Field("list"),
        "gpu_hosts": Field("list"),
    },
    "pod": {
        "name": NAME,
        "kind": Field("choice", default=PodKind.POD.value, choices=_choices(PodKind)),
        "index": Field("int", minimum=0),
    },
    "defaults": {
        "site": Field("str"),
        "platform": Field("choice", choices=_choices(Platform)),
        "model": Field("str", max_len=64),
        "lifecycle": Field("choice", choices=_choices(Lifecycle)),
        "eapi_port": PORT,
        "ssh_port": PORT,
        "gnmi_port": PORT,
        "credential": Field("str", pattern=CREDENTIAL_RE, pattern_hint="a credential name: a-z, 0-9, '-', '_'"),
        "interface": Field("map"),
        "link": Field("map"),
    },
    "device": {
        "hostname": HOSTNAME,
        "role": Field("choice", required=True, choices=_choices(DeviceRole)),
        "platform": Field("choice", required=True, choices=_choices(Platform)),
        "model": Field("str", default="", max_len=64),
        "lifecycle": Field("choice", default=Lifecycle.ACTIVE.value, choices=_choices(Lifecycle)),
        "site": Field("str"),
        "pod": Field("str", default=None),
        "rail": Field("int", default=None, minimum=0, maximum=32767),
        "index": Field("int", minimum=0),
        "mgmt_address": Field("ip", default=None),
        "eapi_port": Field("int", default=443, minimum=1, maximum=65535),
        "ssh_port": Field("int", default=22, minimum=1, maximum=65535),
        "gnmi_port": Field("int", default=6030, minimum=1, maximum=65535),
        "credential": Field(
            "str", default="default", pattern=CREDENTIAL_RE, pattern_hint="a credential name: a-z, 0-9, '-', '_'"
        ),
        "loopback": Field("ip", default=None),
        "asn": Field("int", default=None, minimum=1, maximum=4294967295),
        "interface_defaults": Field("map"),
        "interfaces": Field("list"),
    },
    "interface": {
        "name": Field("str", required=True, max_len=200),
        "speed_gbps": Field("int", required=True, minimum=1),
        "lanes": Field("int", default=8, minimum=1, maximum=32767),
        "admin_up": Field("bool", default=True),
        "mtu": Field("int", default=9214, minimum=68, maximum=65535),
        "address": Field("cidr", default=""),
        "description": Field("str", default="", max_len=200),
        "transceiver": Field("str", default=None),
    },
    "link": {
        "a": Field("str", required=True),
        "b": Field("str", required=True),
        "kind": Field("choice", default=LinkKind.FABRIC.value, choices=_choices(LinkKind)),
        "capacity_gbps": Field("int", minimum=1),
        "state": Field("choice", default=LinkState.UP.value, choices=_choices(LinkState)),
        "subnet": Field("network"),
    },
    "gpu_host": {
        "name": HOSTNAME,
        "pod": Field("str", default=None),
        "gpus": Field("int", default=8, minimum=1, maximum=32767),
        "index": Field("int", minimum=0),
        "nics": Field("list"),
    },
    "nic": {
        "rail": Field("int", required=True, minimum=0, maximum=32767),
        "name": Field("str", max_len=32),
        "speed_gbps": Field("int", minimum=1),
        "leaf": Field("str", required=True),
    },
    "channel": {
        "name": NAME,
        "link": Field("str", required=True),
        "spans": Field("strlist", required=True),
        "frequency_ghz": Field("float", required=True),
        "rate_gbps": Field("int", default=400, minimum=1),
        "modulation": Field("str", default="DP-16QAM", max_len=20),
    },
}
# Keys a fabric's `defaults.interface` / a device's `interface_defaults` may set (not per-port ones).
INTERFACE_DEFAULT_KEYS = ("speed_gbps", "lanes", "admin_up", "mtu", "description", "transceiver")
FIELDS["interface_defaults"] = {k: FIELDS["interface"][k] for k in INTERFACE_DEFAULT_KEYS}
for _f in FIELDS["interface_defaults"]:  # nothing required inside a defaults block
    FIELDS["interface_defaults"][_f] = Field(**{**FIELDS["interface"][_f].__dict__, "required": False, "default": None})
FIELDS["link_defaults"] = {
    "kind": Field("choice", choices=_choices(LinkKind)),
    "state": Field("choice", choices=_choices(LinkState)),
}
DEVICE_DEFAULT_KEYS = ("site", "platform", "model", "lifecycle", "eapi_port", "ssh_port", "gnmi_port", "credential")


def parse_endpoint(value: str) -> tuple[str, str] | None:
    """``"sjc-leaf1:Ethernet1/1"`` -> (hostname, interface); interface names may contain ':' (breakouts)."""
    host, sep, iface = value.partition(":")
    if not sep or not host or not iface:
        return None
    return host, iface


def subnet_pair(network: str) -> tuple[str, str]:
    """The two addresses a point-to-point subnet gives its a and b ends (/31 and /127 use both addresses)."""
    net = ipaddress.ip_network(network)
    if net.num_addresses == 2:
        first, second = net[0], net[1]
    else:
        hosts = net.hosts()
        first, second = next(hosts), next(hosts)
    return f"{first}/{net.prefixlen}", f"{second}/{net.prefixlen}"


class _Reader:
    def __init__(self, spec: Spec, problems: Problems):
        self.spec = spec
        self.p = problems
        # Link subnets: the cross checks turn them into interface addresses once every port is known.
        self.link_meta: dict[Any, dict[str, Any]] = {}
        self.generate_blocks: list[tuple[str, LMap, int, str]] = []

    # -- top level ---------------------------------------------------------------------------------------------
    def read(self, tree: Any) -> None:
        if tree is None:
            self.p.add(1, "<document>", "the inventory is empty; expected a mapping with `fabrics:` and friends")
            return
        top = read_object(tree, "<document>", 1, FIELDS["top"], self.p)
        if top is None:
            return
        if top["version"] != SCHEMA_VERSION:
            self.p.add(
                tree.value_line("version"),
                "version",
                f"unsupported schema version; this FabricOps reads {SCHEMA_VERSION}",
            )
        for item, line, path in item_list(tree, "transceivers", "", self.p):
            self.transceiver(item, line, path)
        for item, line, path in item_list(tree, "sites", "", self.p):
            self.site(item, line, path)
        for item, line, path in item_list(tree, "optical_spans", "", self.p):
            self.span(item, line, path)
        for item, line, path in item_list(tree, "fabrics", "", self.p):
            self.fabric(item, line, path)
        for item, line, path in item_list(tree, "optical_channels", "", self.p):
            self.channel(item, line, path)

    def _dup(
        self, model: str, key: Any, values: dict, line: int, path: str, what: str, item: LMap, name_key: str = "name"
    ) -> bool:
        """Add a row; a duplicate is reported at its name and not added. Returns True when added."""
        first = self.spec.add(model, key, values, line, path, item.value_lines)
        if first is not None:
            self.p.add(
                item.value_line(name_key),
                f"{path}.{name_key}",
                f"duplicate {what} {_name(key)!r} (first defined on line {first[0]})",
            )
            return False
        return True

    # -- catalogues --------------------------------------------------------------------------------------------
    def transceiver(self, item: Any, line: int, path: str) -> None:
        v = read_object(item, path, line, FIELDS["transceiver"], self.p)
        if v is not None and v["name"] is not None:
            name = v.pop("name")
            self._dup("Transceiver", name, v, line, path, "transceiver", item)

    def site(self, item: Any, line: int, path: str) -> None:
        v = read_object(item, path, line, FIELDS["site"], self.p)
        if v is not None and v["name"] is not None:
            values = {"city": v["city"], "latitude": v["lat"], "longitude": v["lon"]}
            self._dup("Site", v["name"], values, line, path, "site", item)

    def span(self, item: Any, line: int, path: str) -> None:
        v = read_object(item, path, line, FIELDS["span"], self.p)
        if v is not None and v["name"] is not None:
            name = v.pop("name")
            if v["a_site"] is not None and v["a_site"] == v["b_site"]:
                self.p.add(item.value_line("b_site"), f"{path}.b_site", "a span joins two different sites")
            self._dup("OpticalSpan", name, v, line, path, "optical span", item)

    # -- fabrics -----------------------------------------------------------------------------------------------
    def fabric(self, item: Any, line: int, path: str) -> None:
        v = read_object(item, path, line, FIELDS["fabric"], self.p)
        if v is None or v["name"] is None:
            return
        name = v["name"]
        if v["parameters"] is not None:
            try:
                json.dumps(plain(v["parameters"]))
            except (TypeError, ValueError) as exc:
                self.p.add(item.value_line("parameters"), f"{path}.parameters", f"must be plain JSON data ({exc})")
                v["parameters"] = None
        values = {
            "kind": v["kind"],
            "site": v["site"],
            "description": v["description"],
            "parameters": plain(v["parameters"]) if v["parameters"] is not None else {},
        }
        if not self._dup("Fabric", name, values, line, path, "fabric", item):
            return  # its contents would be mixed into the first fabric of that name
        pod_positions: dict[str, int] = {}
        for pod, pline, ppath in item_list(item, "pods", path, self.p):
            pv = read_object(pod, ppath, pline, FIELDS["pod"], self.p)
            if pv is None or pv["name"] is None:
                continue
            position = pod_positions.get(pv["kind"], 0)
            pod_positions[pv["kind"]] = position + 1
            values = {"kind": pv["kind"], "index": pv.get("index", position)}
            self._dup("Pod", (name, pv["name"]), values, pline, ppath, "pod", pod)
        defaults = self.defaults(item, path, v.get("defaults"))
        iface_defaults = defaults.pop("interface", {})
        link_defaults = defaults.pop("link", {})
        if v["site"] is not None:
            defaults.setdefault("site", v["site"])
        positions: dict[tuple, int] = {}
        for dev, dline, dpath in item_list(item, "devices", path, self.p):
            self.device(name, dev, dline, dpath, defaults, iface_defaults, positions)
        for link, lline, lpath in item_list(item, "links", path, self.p):
            self.link(link, lline, lpath, link_defaults)
        host_positions: dict[Any, int] = {}
        for host, hline, hpath in item_list(item, "gpu_hosts", path, self.p):
            self.gpu_host(name, host, hline, hpath, host_positions)
        if "generate" in v:
            self.generate_blocks.append((name, item["generate"], item.key_line("generate"), f"{path}.generate"))

    def defaults(self, fabric: LMap, path: str, block: Any) -> dict[str, Any]:
        if block is None:
            return {}
        dpath = f"{path}.defaults"
        v = read_object(block, dpath, fabric.value_line("defaults"), FIELDS["defaults"], self.p) or {}
        if "interface" in v:
            v["interface"] = self.interface_defaults(block, "interface", dpath)
        if "link" in v:
            v["link"] = (
                read_object(block["link"], f"{dpath}.link", block.value_line("link"), FIELDS["link_defaults"], self.p)
                or {}
            )
        return v

    def interface_defaults(self, parent: LMap, key: str, path: str) -> dict[str, Any]:
        v = read_object(parent[key], f"{path}.{key}", parent.value_line(key), FIELDS["interface_defaults"], self.p)
        return {k: val for k, val in (v or {}).items() if val is not None}

    def device(
        self,
        fabric: str,
        item: Any,
        line: int,
        path: str,
        defaults: dict[str, Any],
        iface_defaults: dict[str, Any],
        positions: dict[tuple, int],
    ) -> None:
        v = read_object(item, path, line, FIELDS["device"], self.p, defaults=defaults)
        if v is None or v["hostname"] is None:
            return
        hostname = v["hostname"]
        if "site" not in v:
            self.p.add(line, f"{path}.site", "missing required key (the fabric has no site; say where this device is)")
        group = (v["role"], v["pod"])
        position = positions.get(group, 0)
        positions[group] = position + 1
        values = {
            "fabric": fabric,
            "site": v.get("site"),
            "pod": v["pod"],
            "role": v["role"],
            "platform": v["platform"],
            "model": v["model"],
            "lifecycle": v["lifecycle"],
            "rail": v["rail"],
            "index": v.get("index", position),
            "mgmt_address": v["mgmt_address"],
            "eapi_port": v["eapi_port"],
            "ssh_port": v["ssh_port"],
            "gnmi_port": v["gnmi_port"],
            "credential": v["credential"],
            "loopback": v["loopback"],
            "asn": v["asn"],
        }
        if not self._dup("Device", hostname, values, line, path, "hostname", item, "hostname"):
            return  # a duplicate device: its interfaces would only produce confusing follow-on errors
        own_defaults = dict(iface_defaults)
        if "interface_defaults" in v:
            own_defaults.update(self.interface_defaults(item, "interface_defaults", path))
        for iface, iline, ipath in item_list(item, "interfaces", path, self.p):
            self.interface(hostname, iface, iline, ipath, own_defaults)

    def interface(self, hostname: str, item: Any, line: int, path: str, defaults: dict[str, Any]) -> None:
        v = read_object(item, path, line, FIELDS["interface"], self.p, defaults=defaults)
        if v is None or v["name"] is None:
            return
        pattern = v.pop("name")
        try:
            names = expand(pattern)
        except RangeError as exc:
            self.p.add(item.value_line("name"), f"{path}.name", str(exc))
            return
        if len(names) > 1 and v["address"]:
            self.p.add(item.value_line("address"), f"{path}.address", "a range of interfaces cannot share one address")
            return
        for name in names:
            self._dup("Interface", (hostname, name), dict(v), line, path, "interface", item)

    def link(self, item: Any, line: int, path: str, defaults: dict[str, Any]) -> None:
        v = read_object(item, path, line, FIELDS["link"], self.p, defaults=defaults)
        if v is None or v["a"] is None or v["b"] is None:
            return
        ends = []
        for side in ("a", "b"):
            ep = parse_endpoint(v[side])
            if ep is None:
                self.p.add(item.value_line(side), f"{path}.{side}", f"{v[side]!r} is not 'hostname:interface'")
            ends.append(ep)
        if None in ends:
            return
        a, b = ends
        if a == b:
            self.p.add(item.value_line("b"), f"{path}.b", "a link cannot join an interface to itself")
            return
        key = (a, b)
        values = {"kind": v["kind"], "capacity_gbps": v.get("capacity_gbps"), "state": v["state"]}
        first = self.spec.add("Link", key, values, line, path, item.value_lines)
        if first is not None:
            self.p.add(line, path, f"duplicate link (first defined on line {first[0]})")
            return
        self.link_meta[key] = {"subnet": v.get("subnet")}

    def gpu_host(self, fabric: str, item: Any, line: int, path: str, positions: dict[Any, int]) -> None:
        v = read_object(item, path, line, FIELDS["gpu_host"], self.p)
        if v is None or v["name"] is None:
            return
        name = v["name"]
        position = positions.get(v["pod"], 0)
        positions[v["pod"]] = position + 1
        values = {"fabric": fabric, "pod": v["pod"], "gpus": v["gpus"], "index": v.get("index", position)}
        if not self._dup("GpuHost", name, values, line, path, "GPU host", item):
            return
        for nic, nline, npath in item_list(item, "nics", path, self.p):
            nv = read_object(nic, npath, nline, FIELDS["nic"], self.p)
            if nv is None or nv["rail"] is None or nv["leaf"] is None:
                continue
            leaf = parse_endpoint(nv["leaf"])
            if leaf is None:
                self.p.add(nic.value_line("leaf"), f"{npath}.leaf", f"{nv['leaf']!r} is not 'hostname:interface'")
                continue
            values = {
                "name": nv.get("name", f"nic{nv['rail']}"),
                "speed_gbps": nv.get("speed_gbps"),
                "leaf": leaf,
            }
            first = self.spec.add("GpuNic", (name, nv["rail"]), values, nline, npath, nic.value_lines)
            if first is not None:
                self.p.add(nline, f"{npath}.rail", f"duplicate NIC for rail {nv['rail']} (first on line {first[0]})")

    def channel(self, item: Any, line: int, path: str) -> None:
        v = read_object(item, path, line, FIELDS["channel"], self.p)
        if v is None or v["name"] is None or v["link"] is None or v["spans"] is None:
            return
        ep = parse_endpoint(v["link"])
        if ep is None:
            self.p.add(item.value_line("link"), f"{path}.link", f"{v['link']!r} is not 'hostname:interface'")
            return
        if not v["spans"]:
            self.p.add(item.value_line("spans"), f"{path}.spans", "a channel runs over at least one span")
            return
        values = {
            "link": ep,  # resolved to the link's a end by the cross checks
            "spans": tuple(sorted(set(v["spans"]))),
            "frequency_ghz": v["frequency_ghz"],
            "rate_gbps": v["rate_gbps"],
            "modulation": v["modulation"],
        }
        self._dup("OpticalChannel", v["name"], values, line, path, "optical channel", item)


def _name(key: Any) -> str:
    if isinstance(key, tuple):
        return ":".join(str(k) for k in key) if len(key) == 2 and isinstance(key[0], str) else str(key)
    return str(key)


def read_spec(tree: Any, spec: Spec, problems: Problems) -> _Reader:
    """Fill ``spec`` from a composed file; returns the reader (it holds link subnets and generate blocks)."""
    reader = _Reader(spec, problems)
    reader.read(tree)
    return reader

"""``show`` commands: the JSON shapes eAPI returns (as NAPALM's eos driver parses them) and their text forms.

Every answer is read from the live :class:`SwitchState` (counters, oper state, optics, LLDP peers) or from the
platform's configuration, never from canned data.
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
from datetime import UTC, datetime

from fabric_ops.lab.eos.config import ConfigTree, Node, interface_sort_key, unified_diff
from fabric_ops.lab.eos.platform import MAX_OPEN_SESSIONS, MAX_SAVED_SESSIONS, EosPlatform
from fabric_ops.lab.state import InterfaceState, SwitchState

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_VERSION",
    "system_mac",
]

DEFAULT_MODEL = "DCS-7060DX5-64S-F"  # 64 x 400G, the usual RoCE leaf/spine box
DEFAULT_VERSION = "4.31.2F"  # answers "show configuration sessions detail" in the pre-4.32 format NAPALM reads
ARISTA_OUI = "00:1c:73"


def system_mac(hostname: str) -> str:
    """A stable MAC per hostname (Arista OUI): the same value is our systemMacAddress and peers' LLDP chassis ID."""
    digest = hashlib.sha1(hostname.encode()).hexdigest()
    return f"{ARISTA_OUI}:{digest[0:2]}:{digest[2:4]}:{digest[4:6]}"


def model(switch: SwitchState) -> str:
    return switch.model or DEFAULT_MODEL


def version(switch: SwitchState) -> str:
    return switch.os_version or DEFAULT_VERSION


def serial(switch: SwitchState) -> str:
    return switch.serial or "JPE" + hashlib.sha1(switch.hostname.encode()).hexdigest()[:8].upper()


# --- show version / hostname / clock ---------------------------------------------------------------------------


def show_version(platform: EosPlatform) -> dict:
    sw = platform.switch
    with sw.lock:
        boot, uptime = sw.boot_time, sw.uptime_seconds
        mem_total, mem_used = sw.memory_total_bytes, sw.memory_used_bytes
    ver = version(sw)
    return {
        "mfgName": "Arista",
        "modelName": model(sw),
        "hardwareRevision": "11.00",
        "serialNumber": serial(sw),
        "systemMacAddress": system_mac(sw.hostname),
        "hwMacAddress": system_mac(sw.hostname),
        "configMacAddress": "00:00:00:00:00:00",
        "version": ver,
        "architecture": "x86_64",
        "internalVersion": f"{ver}-{int(hashlib.sha1(ver.encode()).hexdigest()[:7], 16)}.{ver.replace('.', '')}",
        "internalBuildId": hashlib.md5(ver.encode()).hexdigest(),
        "imageFormatVersion": "3.0",
        "imageOptimization": "Strata-4GB",
        "bootupTimestamp": boot,
        "uptime": uptime,
        "memTotal": mem_total // 1024,
        "memFree": (mem_total - mem_used) // 1024,
        "isIntlVersion": False,
    }


def text_version(data: dict) -> str:
    uptime = int(data["uptime"])
    return (
        f"Arista {data['modelName']}\n"
        f"Hardware version: {data['hardwareRevision']}\n"
        f"Serial number: {data['serialNumber']}\n"
        f"Hardware MAC address: {data['hwMacAddress']}\n"
        f"System MAC address: {data['systemMacAddress']}\n\n"
        f"Software image version: {data['version']}\n"
        f"Architecture: {data['architecture']}\n"
        f"Internal build version: {data['internalVersion']}\n"
        f"Internal build ID: {data['internalBuildId']}\n"
        f"Image format version: {data['imageFormatVersion']}\n"
        f"Image optimization: {data['imageOptimization']}\n\n"
        f"Uptime: {uptime // 86400} days, {uptime % 86400 // 3600} hours and {uptime % 3600 // 60} minutes\n"
        f"Total memory: {data['memTotal']} kB\n"
        f"Free memory: {data['memFree']} kB\n"
    )


def show_hostname(platform: EosPlatform) -> dict:
    name = current_hostname(platform)
    return {"hostname": name, "fqdn": name}


def current_hostname(platform: EosPlatform) -> str:
    node = platform.running.root.find("hostname")
    return node.line.split()[1] if node else "localhost"


def show_clock() -> dict:
    now = time.time()
    local = datetime.fromtimestamp(now, UTC)
    return {
        "utcTime": now,
        "timezone": "UTC",
        "clockSource": {"local": True},
        "localTime": {
            "year": local.year,
            "month": local.month,
            "dayOfMonth": local.day,
            "hour": local.hour,
            "min": local.minute,
            "sec": local.second,
            "dayOfWeek": local.weekday(),
            "dayOfYear": local.timetuple().tm_yday,
        },
    }


def text_clock(data: dict) -> str:
    stamp = datetime.fromtimestamp(data["utcTime"], UTC).strftime("%a %b %d %H:%M:%S %Y")
    return f"{stamp}\nTimezone: UTC\nClock source: local\n"


# --- interfaces ------------------------------------------------------------------------------------------------


def _status(iface: InterfaceState) -> tuple[str, str]:
    if not iface.admin_up:
        return "disabled", "down"
    if iface.oper_up:
        return "connected", "up"
    return "notconnect", "down"


def _config_children(tree: ConfigTree, name: str) -> list:
    node = tree.root.find(f"interface {name}")
    return node.children if node else []


def _ip_of(tree: ConfigTree, name: str) -> tuple[str, int] | None:
    for child in _config_children(tree, name):
        if child.key == "ip address":
            address, _, mask = child.line.split()[2].partition("/")
            return address, int(mask)
    return None


def _routed(tree: ConfigTree, name: str) -> bool:
    return any(c.line == "no switchport" for c in _config_children(tree, name))


def _snapshot(switch: SwitchState) -> list[InterfaceState]:
    """Copy interface state under the lock so a slow client never holds it."""
    with switch.lock:
        return [copy.copy(i) for i in sorted(switch.interfaces.values(), key=lambda i: interface_sort_key(i.name))]


def _extra_interfaces(platform: EosPlatform) -> list[str]:
    """Configured logical interfaces (Loopback, Management) that exist besides the physical ports."""
    names = []
    for node in platform.running.root.children:
        if node.key.startswith("interface ") and node.key[10:] not in platform.running.physical:
            names.append(node.key[10:])
    if "Management1" not in names:
        names.append("Management1")
    return sorted(names, key=interface_sort_key)


def _address_list(ip: tuple[str, int] | None) -> list[dict]:
    if ip is None:
        return []
    return [
        {
            "primaryIp": {"address": ip[0], "maskLen": ip[1]},
            "secondaryIps": {},
            "secondaryIpsOrderedList": [],
            "virtualIp": {"address": "0.0.0.0", "maskLen": 0},
            "virtualSecondaryIps": {},
            "virtualSecondaryIpsOrderedList": [],
            "broadcastAddress": "255.255.255.255",
            "dhcp": False,
        }
    ]


def _ethernet_json(platform: EosPlatform, iface: InterfaceState, now: float) -> dict:
    interface_status, line_status = _status(iface)
    mac = system_mac(platform.switch.hostname)
    speed_bps = iface.speed_gbps * 1_000_000_000
    return {
        "name": iface.name,
        "forwardingModel": "routed" if _routed(platform.running, iface.name) else "bridged",
        "lineProtocolStatus": line_status,
        "interfaceStatus": interface_status,
        "hardware": "ethernet",
        "interfaceAddress": _address_list(_ip_of(platform.running, iface.name)),
        "physicalAddress": mac,
        "burnedInAddress": mac,
        "description": iface.description,
        "bandwidth": speed_bps,
        "mtu": iface.mtu,
        "l3MtuConfigured": iface.mtu != 1500,
        "l2Mru": 0,
        "lastStatusChangeTimestamp": iface.last_change_ns / 1e9,
        "duplex": "duplexFull",
        "autoNegotiate": "unknown",
        "loopbackMode": "loopbackNone",
        "lanes": iface.lanes,
        "interfaceStatistics": {
            "updateInterval": 300.0,
            "inBitsRate": iface.in_utilisation * speed_bps,
            "outBitsRate": iface.out_utilisation * speed_bps,
            "inPktsRate": iface.in_utilisation * speed_bps / 8 / 4096,
            "outPktsRate": iface.out_utilisation * speed_bps / 8 / 4096,
        },
        "interfaceCounters": {
            "inOctets": iface.in_octets,
            "inUcastPkts": iface.in_unicast_pkts,
            "inMulticastPkts": 0,
            "inBroadcastPkts": 0,
            "inDiscards": iface.in_discards,
            "inTotalPkts": iface.in_unicast_pkts,
            "outOctets": iface.out_octets,
            "outUcastPkts": iface.out_unicast_pkts,
            "outMulticastPkts": 0,
            "outBroadcastPkts": 0,
            "outDiscards": iface.out_discards,
            "totalInErrors": iface.in_errors,
            "totalOutErrors": iface.out_errors,
            "linkStatusChanges": iface.carrier_transitions,
            "counterRefreshTime": now,
            "inputErrorsDetail": {
                "runtFrames": 0,
                "giantFrames": 0,
                "fcsErrors": iface.in_fcs_errors,
                "alignmentErrors": 0,
                "symbolErrors": 0,
                "rxPause": iface.in_pause_frames,
            },
            "outputErrorsDetail": {
                "collisions": 0,
                "lateCollisions": 0,
                "deferredTransmissions": 0,
                "txPause": iface.out_pause_frames,
            },
        },
    }


def _logical_json(platform: EosPlatform, name: str) -> dict:
    sw = platform.switch
    if name == "Management1":
        ip = _ip_of(platform.running, name) or (sw.mgmt_address, 24)
        hardware, bandwidth, mtu = "ethernet", 1_000_000_000, 1500
    else:
        ip = _ip_of(platform.running, name)
        hardware, bandwidth, mtu = "loopback", 0, 65535
    shut = any(c.key == "shutdown" for c in _config_children(platform.running, name))
    return {
        "name": name,
        "forwardingModel": "routed",
        "lineProtocolStatus": "down" if shut else "up",
        "interfaceStatus": "disabled" if shut else "connected",
        "hardware": hardware,
        "interfaceAddress": _address_list(ip),
        "physicalAddress": system_mac(sw.hostname) if hardware == "ethernet" else "",
        "description": next(
            (c.line[12:] for c in _config_children(platform.running, name) if c.key == "description"), ""
        ),
        "bandwidth": bandwidth,
        "mtu": mtu,
        "l3MtuConfigured": False,
        "l2Mru": 0,
        "lastStatusChangeTimestamp": sw.boot_time,
        "interfaceCounters": {} if hardware == "loopback" else None,
    }


def show_interfaces(platform: EosPlatform, only: str | None = None) -> dict:
    now = time.time()
    out: dict[str, dict] = {}
    for iface in _snapshot(platform.switch):
        if only is None or only == iface.name:
            out[iface.name] = _ethernet_json(platform, iface, now)
    for name in _extra_interfaces(platform):
        if only is None or only == name:
            data = _logical_json(platform, name)
            if data["interfaceCounters"] is None:
                data.pop("interfaceCounters")
            out[name] = data
    return {"interfaces": out}


def text_interfaces(data: dict) -> str:
    lines = []
    for name, i in data["interfaces"].items():
        lines.append(
            f"{name} is {'up' if i['interfaceStatus'] == 'connected' else 'down'}, "
            f"line protocol is {i['lineProtocolStatus']} ({i['interfaceStatus']})"
        )
        lines.append(f"  Hardware is {i['hardware'].capitalize()}, address is {i.get('physicalAddress', '')}")
        if i["description"]:
            lines.append(f"  Description: {i['description']}")
        for addr in i["interfaceAddress"]:
            lines.append(f"  Internet address is {addr['primaryIp']['address']}/{addr['primaryIp']['maskLen']}")
        lines.append(f"  IP MTU {i['mtu']} bytes, BW {i['bandwidth'] // 1000} kbit")
        counters = i.get("interfaceCounters")
        if counters:
            lines.append(f"     {counters['inUcastPkts']} packets input, {counters['inOctets']} bytes")
            lines.append(
                f"     {counters['totalInErrors']} input errors, {counters['inputErrorsDetail']['fcsErrors']} CRC"
            )
            lines.append(f"     {counters['outUcastPkts']} packets output, {counters['outOctets']} bytes")
            lines.append(f"     {counters['totalOutErrors']} output errors")
    return "\n".join(lines) + "\n"


def show_interfaces_status(platform: EosPlatform) -> dict:
    out = {}
    for i in _snapshot(platform.switch):
        link, protocol = _status(i)
        routed = _routed(platform.running, i.name)
        out[i.name] = {
            "description": i.description,
            "linkStatus": link,
            "lineProtocolStatus": protocol,
            "bandwidth": i.speed_gbps * 1_000_000_000,
            "interfaceType": _media(i) if i.transceiver else "Not Present",
            "duplex": "duplexFull",
            "autoNegotiateActive": False,
            "vlanInformation": {"interfaceMode": "routed", "interfaceForwardingModel": "routed"}
            if routed
            else {"interfaceMode": "bridged", "vlanId": 1, "interfaceForwardingModel": "bridged"},
        }
    return {"interfaceStatuses": out}


def text_interfaces_status(data: dict) -> str:
    lines = ["Port       Name        Status       Vlan     Duplex Speed  Type            Flags Encapsulation"]
    for name, i in data["interfaceStatuses"].items():
        vlan = "routed" if i["vlanInformation"]["interfaceMode"] == "routed" else str(i["vlanInformation"]["vlanId"])
        speed = f"{i['bandwidth'] // 1_000_000_000}G"
        name_col = i["description"][:11]
        lines.append(
            f"{name:<10} {name_col:<11} {i['linkStatus']:<12} {vlan:<8} full   {speed:<6} {i['interfaceType']}"
        )
    return "\n".join(lines) + "\n"


def show_interfaces_counters(platform: EosPlatform) -> dict:
    now = time.time()
    out = {}
    for i in _snapshot(platform.switch):
        out[i.name] = {
            "inOctets": i.in_octets,
            "inUcastPkts": i.in_unicast_pkts,
            "inMulticastPkts": 0,
            "inBroadcastPkts": 0,
            "inDiscards": i.in_discards,
            "outOctets": i.out_octets,
            "outUcastPkts": i.out_unicast_pkts,
            "outMulticastPkts": 0,
            "outBroadcastPkts": 0,
            "outDiscards": i.out_discards,
            "lastUpdateTimestamp": now,
        }
    return {"interfaces": out}


def show_interfaces_counters_errors(platform: EosPlatform) -> dict:
    out = {}
    for i in _snapshot(platform.switch):
        out[i.name] = {
            "fcsErrors": i.in_fcs_errors,
            "alignmentErrors": 0,
            "symbolErrors": 0,
            "inErrors": i.in_errors,
            "frameTooShorts": 0,
            "frameTooLongs": 0,
            "outErrors": i.out_errors,
        }
    return {"interfaceErrorCounters": out}


def show_ip_interface(platform: EosPlatform) -> dict:
    out = {}
    data = show_interfaces(platform)["interfaces"]
    for name, i in data.items():
        if not i["interfaceAddress"]:
            continue
        out[name] = {
            "name": name,
            "lineProtocolStatus": i["lineProtocolStatus"],
            "interfaceStatus": i["interfaceStatus"],
            "mtu": i["mtu"],
            "interfaceAddress": i["interfaceAddress"][0],
            "ipv4Routable240": False,
            "ipv4Routable0": False,
            "enabled": i["interfaceStatus"] != "disabled",
            "description": i["description"],
            "proxyArp": False,
            "localProxyArp": False,
            "vrf": "default",
            "urpf": "disable",
            "directedBroadcastEnabled": False,
            "maxMssIngress": 0,
            "maxMssEgress": 0,
        }
    return {"interfaces": out}


# --- LLDP ------------------------------------------------------------------------------------------------------


def _peer_name(peer: tuple[str, str]) -> str:
    host, _ = peer
    return host.split(":", 1)[1] if host.startswith("host:") else host


def _lldp_visible(iface: InterfaceState) -> bool:
    return iface.peer is not None and iface.admin_up and iface.oper_up


def show_lldp_neighbors(platform: EosPlatform) -> dict:
    neighbours = []
    ifaces = _snapshot(platform.switch)
    for i in ifaces:
        if _lldp_visible(i):
            neighbours.append(
                {"port": i.name, "neighborDevice": _peer_name(i.peer), "neighborPort": i.peer[1], "ttl": 120}
            )
    return {
        "tablesLastChangeTime": max((i.last_change_ns / 1e9 for i in ifaces), default=platform.switch.boot_time),
        "tablesAgeOuts": 0,
        "tablesInserts": len(neighbours),
        "tablesDeletes": 0,
        "tablesDrops": 0,
        "lldpNeighbors": neighbours,
    }


def text_lldp_neighbors(data: dict) -> str:
    lines = [
        f"Number of table inserts  : {data['tablesInserts']}",
        f"Number of table deletes  : {data['tablesDeletes']}",
        f"Number of table drops    : {data['tablesDrops']}",
        f"Number of table age-outs : {data['tablesAgeOuts']}",
        "",
        "Port          Neighbor Device ID       Neighbor Port ID    TTL",
        "---------- ------------------------ ---------------------- ---",
    ]
    for n in data["lldpNeighbors"]:
        lines.append(f"{n['port']:<13} {n['neighborDevice']:<24} {n['neighborPort']:<19} {n['ttl']}")
    return "\n".join(lines) + "\n"


def show_lldp_neighbors_detail(platform: EosPlatform, only: str | None = None) -> dict:
    out: dict[str, dict] = {}
    for i in _snapshot(platform.switch):
        if only is not None and i.name != only:
            continue
        info = []
        if _lldp_visible(i):
            is_host = i.peer[0].startswith("host:")
            name = _peer_name(i.peer)
            info.append(
                {
                    "systemName": name,
                    "systemDescription": "Linux GPU server"
                    if is_host
                    else f"Arista Networks EOS version {version(platform.switch)}",
                    "chassisIdType": "macAddress",
                    "chassisId": system_mac(name).replace(":", "").lower()[:4]
                    + "."
                    + system_mac(name).replace(":", "")[4:8]
                    + "."
                    + system_mac(name).replace(":", "")[8:12],
                    "systemCapabilities": {"station": True} if is_host else {"bridge": True, "router": True},
                    "ttl": 120,
                    "lastChangeTime": i.last_change_ns / 1e9,
                    "neighborDiscoveryTime": i.last_change_ns / 1e9,
                    "lastContactTime": time.time(),
                    "managementAddresses": [],
                    "neighborInterfaceInfo": {
                        "interfaceIdType": "interfaceName",
                        "interfaceId": f'"{i.peer[1]}"',
                        "interfaceDescription": "",
                        "maxFrameSize": 9236 if not is_host else 9000,
                        "linkAggregationStatus": "capableAndDisabled",
                        "linkAggregationInterfaceId": 0,
                        "unknownTlvs": [],
                        "unknownOrgDefinedTlvs": [],
                    },
                }
            )
        out[i.name] = {"lldpNeighborInfo": info}
    return {"lldpNeighbors": out}


# --- transceivers ----------------------------------------------------------------------------------------------

_MEDIA = {"800G-2xDR4": "800GBASE-2DR4", "400G-DR4": "400GBASE-DR4", "400G-FR4": "400GBASE-FR4"}


def _media(iface: InterfaceState) -> str:
    return _MEDIA.get(iface.transceiver, iface.transceiver or "unknown")


def show_transceiver(platform: EosPlatform) -> dict:
    """One row per port with the first lane's readings, as EOS prints the primary lane of a port."""
    now = time.time()
    out = {}
    for i in _snapshot(platform.switch):
        if not i.optics:
            continue
        lane = i.optics[0]
        out[i.name] = {
            "vendorSn": serial(platform.switch) + i.name.replace("Ethernet", "").replace("/", ""),
            "mediaType": _media(i),
            "narrowBand": False,
            "updateTime": now,
            "temperature": float(i.temperature_c),
            "voltage": 3.3,
            "txBias": float(lane.laser_bias_ma),
            "txPower": float(lane.output_power_dbm),
            "rxPower": float(lane.input_power_dbm),
        }
    return {"interfaces": out}


def text_transceiver(data: dict) -> str:
    lines = [
        "If device is externally calibrated, only calibrated values are printed.",
        "N/A: not applicable, Tx: transmit, Rx: receive.",
        "mA: milliamperes, dBm: decibels (milliwatts).",
        "",
        "                                 Bias      Optical   Optical",
        "           Temp       Voltage    Current   Tx Power  Rx Power",
        "Port       (Celsius)  (Volts)    (mA)      (dBm)     (dBm)     Last Update",
        "---------- ---------- ---------- --------- --------- --------- -------------------",
    ]
    for name, t in data["interfaces"].items():
        lines.append(
            f"{name:<10} {t['temperature']:<10.2f} {t['voltage']:<10.2f} {t['txBias']:<9.2f} "
            f"{t['txPower']:<9.2f} {t['rxPower']:<9.2f} 0:00:01 ago"
        )
    return "\n".join(lines) + "\n"


_THRESHOLDS = {
    "temperature": {"highAlarm": 75.0, "highWarn": 70.0, "lowAlarm": -5.0, "lowWarn": 0.0},
    "voltage": {"highAlarm": 3.63, "highWarn": 3.46, "lowAlarm": 2.97, "lowWarn": 3.13},
    "txBias": {"highAlarm": 13.0, "highWarn": 12.0, "lowAlarm": 3.0, "lowWarn": 4.0},
    "txPower": {"highAlarm": 5.0, "highWarn": 4.0, "lowAlarm": -6.4, "lowWarn": -4.4},
    "rxPower": {"highAlarm": 5.0, "highWarn": 4.0, "lowAlarm": -10.4, "lowWarn": -8.4},
}


def show_transceiver_dom(platform: EosPlatform, thresholds: bool) -> dict:
    """Per-lane DOM readings (``channels`` "1".."N"), the EOS view of multi-lane optics."""
    now = time.time()
    out = {}
    for i in _snapshot(platform.switch):
        if not i.optics:
            continue
        params = {
            "temperature": {"unit": "C", "channels": {"-": float(i.temperature_c)}},
            "voltage": {"unit": "V", "channels": {"-": 3.3}},
            "txBias": {"unit": "mA", "channels": {str(n + 1): lane.laser_bias_ma for n, lane in enumerate(i.optics)}},
            "txPower": {
                "unit": "dBm",
                "channels": {str(n + 1): lane.output_power_dbm for n, lane in enumerate(i.optics)},
            },
            "rxPower": {
                "unit": "dBm",
                "channels": {str(n + 1): lane.input_power_dbm for n, lane in enumerate(i.optics)},
            },
        }
        if thresholds:
            for name, values in params.items():
                values["threshold"] = dict(_THRESHOLDS[name])
        out[i.name] = {
            "displayName": i.name,
            "vendorSn": serial(platform.switch) + i.name.replace("Ethernet", "").replace("/", ""),
            "mediaType": _media(i),
            "updateTime": now,
            "parameters": params,
        }
    return {"interfaces": out}


# --- configuration ---------------------------------------------------------------------------------------------


def config_header(platform: EosPlatform, command: str) -> list[str]:
    sw = platform.switch
    return [
        f"! Command: {command}",
        f"! device: {current_hostname(platform)} ({model(sw)}, EOS-{version(sw)})",
        "!",
        "! boot system flash:/EOS.swi",
    ]


def running_text(platform: EosPlatform, command: str = "show running-config", tree: ConfigTree | None = None) -> str:
    if tree is None or tree is platform.running or any(s.config is tree for s in platform.sessions.values()):
        lines = platform.lines_of(tree or platform.running)  # rendered once per configuration
    else:
        lines = tree.lines()  # a throw-away tree (show running-config all)
    return "\n".join(config_header(platform, command) + lines) + "\n"


def startup_text(platform: EosPlatform) -> str:
    stamp = datetime.fromtimestamp(platform.startup_modified, UTC).strftime("%a %b %d %H:%M:%S %Y")
    header = [
        "! Command: show startup-config",
        f"! Startup-config last modified at {stamp} by admin",
        f"! device: {current_hostname(platform)} ({model(platform.switch)}, EOS-{version(platform.switch)})",
        "!",
        "! boot system flash:/EOS.swi",
    ]
    return "\n".join(header + platform.lines_of(platform.startup)) + "\n"


def sanitize(text: str) -> str:
    out = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens[:1] == ["username"] and "secret" in tokens:
            idx = tokens.index("secret")
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + " ".join([*tokens[: idx + 1], "sha512", "<removed>"])
        elif len(tokens) >= 4 and tokens[0] == "neighbor" and tokens[2] == "password":
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + " ".join([*tokens[:3], "<removed>"])
        out.append(line)
    return "\n".join(out) + "\n"


def running_all_text(platform: EosPlatform) -> str:
    """``show running-config all``: the running-config plus the defaults EOS makes explicit per port."""
    tree = platform.running.copy()
    for name in tree.physical:
        node = tree.root.find(f"interface {name}")
        keys = {c.key for c in node.children}
        if "shutdown" not in keys:
            node.children.append(Node("no shutdown", "shutdown", 12))
        if "mtu" not in keys:
            node.children.append(Node("mtu 1500", "mtu", 14))
        if "description" not in keys:
            node.children.append(Node("no description", "description", 10))
        if "switchport" not in keys:
            node.children.append(Node("switchport", "switchport", 18))
    return running_text(platform, "show running-config all", tree)


def session_diff(platform: EosPlatform, name: str) -> str:
    session = platform.sessions.get(name)
    if session is None:
        return ""
    return unified_diff(
        platform.lines_of(platform.running),
        platform.lines_of(session.config),
        "system:/running-config",
        f"session:/{name}-session-config",
    )


def running_diffs(platform: EosPlatform) -> str:
    """``show running-config diffs``: what differs from the startup-config."""
    return unified_diff(
        platform.lines_of(platform.startup),
        platform.lines_of(platform.running),
        "flash:/startup-config",
        "system:/running-config",
    )


def show_sessions(platform: EosPlatform, detail: bool) -> dict:
    out = {}
    for name, s in platform.sessions.items():
        entry: dict = {
            "state": s.state,
            "commitUser": s.user if s.state != "pending" else "",
            "description": "",
            "instances": {},
        }
        if s.completed_time is not None:
            entry["completedTime"] = s.completed_time
        if detail:
            entry["instances"] = {}
            if s.commit_by is not None and s.state == "pendingCommitTimer":
                entry["commitBy"] = s.commit_by
        out[name] = entry
    result = {"sessions": out, "maxSavedSessions": MAX_SAVED_SESSIONS, "maxOpenSessions": MAX_OPEN_SESSIONS}
    if detail and _version_tuple(version(platform.switch)) >= (4, 32):
        # EOS 4.32 moved the pending commit timer to the top level (NAPALM reads either shape)
        for name, s in platform.sessions.items():
            if s.state == "pendingCommitTimer" and s.commit_by is not None:
                result["commitTimerSessionName"] = name
                result["commitTimerExpireTime"] = s.commit_by
                out[name].pop("commitBy", None)
    return result


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", text)[:2]
    return tuple(int(n) for n in numbers)


_STATE_TEXT = {"pending": "pending", "pendingCommitTimer": "pending commit timer", "completed": "completed"}


def text_sessions(data: dict) -> str:
    lines = [
        f"Maximum number of completed sessions: {data['maxSavedSessions']}",
        f"Maximum number of pending sessions: {data['maxOpenSessions']}",
        "",
        "   Name                  State                  User      Terminal",
        "   --------------------- ---------------------- --------- --------",
    ]
    for name, s in data["sessions"].items():
        lines.append(f"   {name:<21} {_STATE_TEXT.get(s['state'], s['state']):<22} {s['commitUser']:<9}")
    return "\n".join(lines) + "\n"


def generic_text(data: dict, indent: int = 0) -> str:
    """Text for commands whose EOS table layout we do not reproduce: an indented key/value dump."""
    lines = []
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(generic_text(value, indent + 1).rstrip("\n"))
        else:
            lines.append(f"{pad}{key}: {value}")
    return "\n".join(line for line in lines if line) + "\n"


# --- environment (NAPALM get_environment) ----------------------------------------------------------------------


def show_environment_cooling(platform: EosPlatform) -> dict:
    return {
        "systemStatus": "coolingOk",
        "ambientTemperature": 25.0,
        "airflowDirection": "frontToBackAirflow",
        "fanTraySlots": [
            {
                "label": str(n),
                "status": "ok",
                "speed": 45,
                "fans": [{"label": f"{n}/1", "status": "ok", "actualSpeed": 45}],
            }
            for n in range(1, 5)
        ],
        "powerSupplySlots": [],
    }


def show_environment_temperature(platform: EosPlatform) -> dict:
    """Board sensors plus the hottest optic: a fault that heats a transceiver shows here too."""
    with platform.switch.lock:
        hottest = max((i.temperature_c for i in platform.switch.interfaces.values() if i.optics), default=40.0)
    sensors = [
        {"name": "TempSensor1", "description": "Cpu temp sensor", "currentTemperature": 52.0},
        {"name": "TempSensor2", "description": "Switch chip sensor", "currentTemperature": 61.0},
        {"name": "TempSensor3", "description": "Hottest transceiver", "currentTemperature": float(hottest)},
    ]
    for sensor in sensors:
        sensor.update({"overheatThreshold": 95.0, "criticalThreshold": 105.0, "hwStatus": "ok", "inAlertState": False})
        sensor["inAlertState"] = sensor["currentTemperature"] > sensor["overheatThreshold"]
    return {"systemStatus": "temperatureOk", "tempSensors": sensors, "cardSlots": [], "powerSupplySlots": []}


def show_environment_power(platform: EosPlatform) -> dict:
    return {
        "powerSupplies": {
            str(n): {"modelName": "PWR-2411-PI-RED", "capacity": 2400.0, "outputPower": 410.0, "state": "ok"}
            for n in (1, 2)
        }
    }


def processes_top_text(platform: EosPlatform) -> str:
    """``show processes top once``: the header lines NAPALM parses for CPU and memory, from the switch state."""
    sw = platform.switch
    with sw.lock:
        cpu, total, used = sw.cpu_utilisation, sw.memory_total_bytes, sw.memory_used_bytes
    idle = max(0.0, 100.0 - cpu)
    total_mib, used_mib = total / 1024**2, used / 1024**2
    return (
        f"top - {time.strftime('%H:%M:%S')} up {int(sw.uptime_seconds // 60)} min,  0 users,  "
        "load average: 0.5, 0.4, 0.3\n"
        "Tasks: 300 total,   1 running, 299 sleeping,   0 stopped,   0 zombie\n"
        f"%Cpu(s): {cpu * 0.7:4.1f} us, {cpu * 0.3:4.1f} sy,  0.0 ni, {idle:4.1f} id,  "
        "0.0 wa,  0.0 hi,  0.0 si,  0.0 st\n"
        f"MiB Mem : {total_mib:8.1f} total, {total_mib - used_mib:8.1f} free, {used_mib:8.1f} used, "
        f"{0.0:8.1f} buff/cache\n"
        f"MiB Swap:      0.0 total,      0.0 free,      0.0 used. {total_mib - used_mib:8.1f} avail Mem\n"
    )

"""``display`` command output in CloudEngine's layout, from the switch's live state.

Counters and optics come from :class:`SwitchState` (advanced by the physics
engine); configuration-derived fields (IP address, MTU, description) come from
the running configuration, as on the device.
"""

from __future__ import annotations

import hashlib
import time

from fabric_ops.lab.state import InterfaceState, SwitchState

from .config import Node
from .platform import VrpPlatform

DEFAULT_MODEL = "CE8851-32CQ8DQ-P"
DEFAULT_VERSION = "V300R022C00SPC100"
VRP_VERSION = "8.220"


def model(switch: SwitchState) -> str:
    return switch.model or DEFAULT_MODEL


def version(switch: SwitchState) -> str:
    return switch.os_version or DEFAULT_VERSION


def serial(switch: SwitchState) -> str:
    return switch.serial or "2102" + hashlib.sha1(switch.hostname.encode()).hexdigest()[:16].upper()


def mac(hostname: str, index: int = 0) -> str:
    digest = hashlib.sha1(hostname.encode()).hexdigest()
    value = int(digest[:8], 16) + index
    raw = f"00e0fc{value & 0xFFFFFF:06x}"
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} days, {hours} hours, {rest // 60} minutes"


def display_version(switch: SwitchState) -> list[str]:
    return [
        "Huawei Versatile Routing Platform Software",
        f"VRP (R) software, Version {VRP_VERSION} ({model(switch)} {version(switch)})",
        "Copyright (C) 2012-2024 Huawei Technologies Co., Ltd.",
        f"HUAWEI {model(switch)} uptime is {_uptime(switch.uptime_seconds)}",
        "",
        f"{model(switch)}(Master) 1 : uptime is {_uptime(switch.uptime_seconds)}",
        "        StartupTime " + time.strftime("%Y/%m/%d   %H:%M:%S", time.gmtime(switch.boot_time)),
        "Memory    Size    : " + str(switch.memory_total_bytes // 1024**2) + " M bytes",
        "Flash     Size    : 2048 M bytes",
        f"{model(switch)} version information",
        "1. PCB    Version : CEM32CQ8DQP01    VER A",
        "2. MAB    Version : 1",
        "3. Board  Type    : " + model(switch),
        "4. CPLD1  Version : 102",
        "5. BIOS   Version : 536",
    ]


def _iface_config(tree: Node, name: str) -> list[str]:
    node = tree.find(f"interface {name}")
    return [child.text for child in node.children] if node else []


def _fmt_time(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns / 1e9))


def _rates(iface: InterfaceState) -> tuple[int, int, int, int]:
    bps = iface.speed_gbps * 1_000_000_000
    in_bps, out_bps = int(iface.in_utilisation * bps), int(iface.out_utilisation * bps)
    return in_bps, in_bps // 8000, out_bps, out_bps // 8000


def display_interface(switch: SwitchState, tree: Node, name: str, index: int) -> list[str]:
    iface = switch.interfaces[name]
    config = _iface_config(tree, name)
    admin = "shutdown" not in config
    phy = "UP" if admin and iface.oper_up else ("Administratively DOWN" if not admin else "DOWN")
    protocol = "UP" if admin and iface.oper_up else "DOWN"
    address = next((c.split()[2:4] for c in config if c.startswith("ip address ")), None)
    routed = "undo portswitch" in config
    in_bps, in_pps, out_bps, out_pps = _rates(iface)
    lines = [
        f"{name} current state : {phy} (ifindex: {index})",
        f"Line protocol current state : {protocol}",
        f"Description: {iface.description}",
    ]
    if routed:
        lines.append(f"Route Port,The Maximum Transmit Unit is {iface.mtu}")
        if address:
            lines.append(f"Internet Address is {address[0]}/{address[1]}")
        lines.append(f"IP Sending Frames' Format is PKTFMT_ETHNT_2, Hardware address is {mac(switch.hostname, index)}")
    else:
        lines.append(f"Switch Port, PVID :    1, TPID : 8100(Hex), The Maximum Frame Length is {iface.mtu + 22}")
        lines.append(f"IP Sending Frames' Format is PKTFMT_ETHNT_2, Hardware address is {mac(switch.hostname, index)}")
    up_time = _fmt_time(iface.last_change_ns) if iface.oper_up else "-"
    down_time = _fmt_time(iface.last_change_ns) if not iface.oper_up else "-"
    lines += [
        "Port Mode: COMMON FIBER",
        f"Speed: {iface.speed_gbps * 1000},  Loopback: NONE",
        "Duplex: FULL,   Negotiation: DISABLE",
        "Input Flow-control: DISABLE, Output Flow-control: DISABLE",
        "Mdi: -,         Fec: RS-FEC",
        f"Last physical up time   : {up_time}",
        f"Last physical down time : {down_time}",
        "Current system time: " + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "Statistics last cleared:never",
        f"    Last 300 seconds input rate: {in_bps} bits/sec, {in_pps} packets/sec",
        f"    Last 300 seconds output rate: {out_bps} bits/sec, {out_pps} packets/sec",
        "    Input peak rate 0 bits/sec, Record time: -",
        "    Output peak rate 0 bits/sec, Record time: -",
        f"    Input : {iface.in_octets} bytes, {iface.in_unicast_pkts} packets",
        f"    Output: {iface.out_octets} bytes, {iface.out_unicast_pkts} packets",
        "    Input:",
        f"      Unicast: {iface.in_unicast_pkts} packets, Multicast: 0 packets",
        "      Broadcast: 0 packets, JumboOctets: 0 packets",
        f"      CRC: {iface.in_fcs_errors} packets, Symbol: 0 packets",
        "      Overrun: 0 packets, InRangeLength: 0 packets",
        "      LongPacket: 0 packets, Jabber: 0 packets, Alignment: 0 packets",
        "      Fragment: 0 packets, Undersized Frame: 0 packets",
        f"      RxPause: {iface.in_pause_frames} packets",
        f"      Discard: {iface.in_discards} packets, Total Error: {iface.in_errors} packets",
        "    Output:",
        f"      Unicast: {iface.out_unicast_pkts} packets, Multicast: 0 packets",
        "      Broadcast: 0 packets, JumboOctets: 0 packets",
        "      Lost: 0 packets, Overflow: 0 packets, Underrun: 0 packets",
        "      System: 0 packets, Overruns: 0 packets",
        f"      TxPause: {iface.out_pause_frames} packets",
        f"      Discard: {iface.out_discards} packets, Total Error: {iface.out_errors} packets",
        "    Local Fault: normal, Remote Fault: normal.",
        f"    Last 300 seconds input utility rate:  {iface.in_utilisation * 100:.2f}%",
        f"    Last 300 seconds output utility rate: {iface.out_utilisation * 100:.2f}%",
        f"    Input bandwidth utilization  : {iface.in_utilisation * 100:6.2f}%",
        f"    Output bandwidth utilization : {iface.out_utilisation * 100:6.2f}%",
    ]
    return lines


def logical_interfaces(tree: Node) -> list[str]:
    return [
        child.text.split()[1]
        for child in tree.children
        if child.text.startswith(("interface LoopBack", "interface Eth-Trunk", "interface Vlanif"))
    ]


def display_interface_logical(tree: Node, name: str, index: int, switch: SwitchState) -> list[str]:
    config = _iface_config(tree, name)
    address = next((c.split()[2:4] for c in config if c.startswith("ip address ")), None)
    description = next((c[len("description ") :] for c in config if c.startswith("description ")), "")
    lines = [
        f"{name} current state : UP (ifindex: {index})",
        "Line protocol current state : UP (spoofing)",
        f"Description: {description}",
        "Route Port,The Maximum Transmit Unit is 1500",
    ]
    if address:
        lines.append(f"Internet Address is {address[0]}/{address[1]}")
    lines += [
        "Physical is Loopback" if name.startswith("LoopBack") else "Physical is ETH-TRUNK",
        "Current system time: " + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "    Input : 0 bytes, 0 packets",
        "    Output: 0 bytes, 0 packets",
    ]
    return lines


BRIEF_LEGEND = [
    "PHY: Physical",
    "*down: administratively down",
    "^down: standby",
    "(l): loopback",
    "(s): spoofing",
    "(E): E-Trunk down",
    "(b): BFD down",
    "(B): Bit-error-detection down",
    "(e): ETHOAM down",
    "(d): Dampening Suppressed",
    "(p): port alarm down",
    "(ld): loop-detect trigger down",
    "(c): CFM down",
    "(sd): STP instance discarding",
    "InUti/OutUti: input utility rate/output utility rate",
    "Interface                   PHY   Protocol  InUti OutUti   inErrors  outErrors",
]


def _brief_row(name: str, phy: str, proto: str, in_uti: str, out_uti: str, in_err: int, out_err: int) -> str:
    return f"{name:<28}{phy:<6}{proto:<10}{in_uti:>5}{out_uti:>7}{in_err:>11}{out_err:>11}"


def _uti(fraction: float) -> str:
    return "0%" if fraction <= 0 else f"{fraction * 100:.2f}%"


def display_interface_brief(switch: SwitchState, tree: Node) -> list[str]:
    lines = list(BRIEF_LEGEND)
    for name, iface in switch.interfaces.items():
        admin = "shutdown" not in _iface_config(tree, name)
        phy = "*down" if not admin else ("up" if iface.oper_up else "down")
        proto = "up" if admin and iface.oper_up else "down"
        lines.append(
            _brief_row(
                name,
                phy,
                proto,
                _uti(iface.in_utilisation),
                _uti(iface.out_utilisation),
                iface.in_errors,
                iface.out_errors,
            )
        )
    for name in logical_interfaces(tree):
        lines.append(_brief_row(name, "up", "up(s)", "0%", "0%", 0, 0))
    lines.append(_brief_row("MEth0/0/0", "up", "up", "0%", "0%", 0, 0))
    lines.append(_brief_row("NULL0", "up", "up(s)", "0%", "0%", 0, 0))
    return lines


def display_interface_description(switch: SwitchState, tree: Node) -> list[str]:
    lines = [line for line in BRIEF_LEGEND[:3]]
    lines.append(f"{'Interface':<30}{'PHY':<8}{'Protocol':<9}Description")
    for name, iface in switch.interfaces.items():
        admin = "shutdown" not in _iface_config(tree, name)
        phy = "*down" if not admin else ("up" if iface.oper_up else "down")
        proto = "up" if admin and iface.oper_up else "down"
        lines.append(f"{name:<30}{phy:<8}{proto:<9}{iface.description}")
    return lines


def _neighbours(switch: SwitchState, names: list[str]) -> list[tuple[str, InterfaceState, str, str]]:
    out = []
    for name in names:
        iface = switch.interfaces[name]
        if iface.peer is None or not iface.oper_up or not iface.admin_up:
            continue
        system, port = iface.peer
        out.append((name, iface, system.removeprefix("host:"), port))
    return out


def display_lldp_brief(switch: SwitchState) -> list[str]:
    lines = [f"{'Local Intf':<17}{'Neighbor Dev':<25}{'Neighbor Intf':<26}Exptime(s)"]
    for name, _iface, system, port in _neighbours(switch, list(switch.interfaces)):
        lines.append(f"{name:<17}{system:<25}{port:<26}{111}")
    return lines


def display_lldp(switch: SwitchState, names: list[str]) -> list[str]:
    lines: list[str] = []
    found = {name: (system, port) for name, _i, system, port in _neighbours(switch, names)}
    for name in names:
        if name not in found:
            lines += [f"{name} has 0 neighbor(s)", ""]
            continue
        system, port = found[name]
        host = switch.interfaces[name].peer[0].startswith("host:")  # type: ignore[index]
        lines += [
            f"{name} has 1 neighbor(s):",
            "",
            "Neighbor index                     :1",
            "Chassis type                       :MAC address",
            f"Chassis ID                         :{mac(system)}",
            "Port ID type                       :Interface name",
            f"Port ID                            :{port}",
            f"Port description                   :{port}",
            f"System name                        :{system}",
            "System description                 :"
            + ("Linux GPU host" if host else "Huawei Versatile Routing Platform Software"),
            "System capabilities supported      :" + ("station" if host else "bridge router"),
            "System capabilities enabled        :" + ("station" if host else "bridge router"),
            "Management address type            :IPv4",
            "Expired time                       :111s",
            "",
        ]
    return lines


def display_device(switch: SwitchState) -> list[str]:
    return [
        f"{model(switch)}'s Device status:",
        "-" * 91,
        "Slot  Card   Type                          Online   Power Register     Alarm     Primary",
        "-" * 91,
        f"1     -      {model(switch):<30}Present  On    Registered   Normal    Master",
        "      PWR1   PAC1K2S12-PB                  Present  On    Registered   Normal    NA",
        "      PWR2   PAC1K2S12-PB                  Present  On    Registered   Normal    NA",
        "      FAN1   FAN-40SB-F                    Present  On    Registered   Normal    NA",
        "      FAN2   FAN-40SB-F                    Present  On    Registered   Normal    NA",
        "-" * 91,
    ]


def display_transceiver(switch: SwitchState, names: list[str]) -> list[str]:
    lines: list[str] = []
    for name in names:
        iface = switch.interfaces[name]
        if not iface.transceiver:
            continue
        optics = iface.optics
        lines += [
            f"{name} transceiver information:",
            "-" * 67,
            "Common information:",
            f"  Transceiver Type                      :{iface.transceiver}",
            "  Connector Type                        :MPO",
            "  Wavelength (nm)                       :1310",
            "  Transfer Distance (m)                 :500(9um)",
            "  Digital Diagnostic Monitoring         :YES",
            "  Vendor Name                           :HUAWEI",
            f"  Vendor Part Number                    :{iface.transceiver}",
            "-" * 67,
            "Manufacture information:",
            f"  Manu. Serial Number                   :{serial(switch)[-8:]}{name.split('/')[-1]:>04}",
            "  Manufacturing Date                    :2024-03-11",
            "-" * 67,
            "Diagnostic information:",
            f"  Temperature (Celsius)                 :{iface.temperature_c:.2f}",
            "  Voltage (V)                           :3.30",
            "  Bias Current (mA)                     :" + "|".join(f"{o.laser_bias_ma:.2f}" for o in optics),
            "  Bias High Threshold (mA)              :13.00",
            "  Bias Low Threshold (mA)               :2.00",
            "  RX Power (dBm)                        :" + "|".join(f"{o.input_power_dbm:.2f}" for o in optics),
            "  RX Power High Threshold (dBm)         :4.50",
            "  RX Power Low Threshold (dBm)          :-10.40",
            "  TX Power (dBm)                        :" + "|".join(f"{o.output_power_dbm:.2f}" for o in optics),
            "  TX Power High Threshold (dBm)         :4.50",
            "  TX Power Low Threshold (dBm)          :-6.40",
            "-" * 67,
            "",
        ]
    return lines


def display_clock() -> list[str]:
    now = time.gmtime()
    return [
        time.strftime("%Y-%m-%d %H:%M:%S+00:00", now),
        time.strftime("%A", now),
        "Time Zone(DefaultZoneName) : UTC",
    ]


def display_commit_list(state: VrpPlatform) -> list[str]:
    lines = [
        "-" * 79,
        "No.  CommitId         Label                  User            Date & Time",
        "-" * 79,
    ]
    for number, record in enumerate(reversed(state.commits), start=1):
        when = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(record.when))
        lines.append(f"{number:<5}{record.commit_id:<17}{record.label or '-':<23}{record.user:<16}{when}")
    lines.append("-" * 79)
    return lines


def display_trial_status(state: VrpPlatform) -> list[str]:
    if state.trial is None:
        return ["Trial configuration status: No trial configuration."]
    remaining = max(0, int(state.trial.deadline - time.time()))
    return [
        "Trial configuration status: Running",
        f"User name                 : {state.trial.user}",
        f"Remaining time            : {remaining} seconds",
    ]

"""The state of one emulated switch: the contract between the lab's parts.

Three kinds of code share a :class:`SwitchState`:

* the platform front ends (``eos/`` over eAPI, ``huawei_vrp/`` over SSH) own the
  running configuration text, parse it, and after every commit call
  :meth:`SwitchState.apply_config_effects` with what the configuration means for
  the data plane (interface admin state, MTU, the RoCE QoS settings);
* the physics engine (``physics.py``) reads admin state and :class:`QosSettings`
  and advances counters, queue depths and optical values on every tick;
* the gNMI server (``gnmi/``) reads counters and state to answer Get/Subscribe.

Everything mutable is guarded by ``SwitchState.lock``; readers take it briefly
and copy what they need, so a slow client never stalls the physics.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

TRAFFIC_CLASSES = 8


@dataclass(frozen=True)
class EcnProfile:
    """WRED/ECN marking on one traffic class: mark from ``min_kbytes`` of depth, ramping to ``max_probability``."""

    min_kbytes: int
    max_kbytes: int
    max_probability: float  # 0..1 at max_kbytes


@dataclass(frozen=True)
class QosSettings:
    """What the running configuration says about lossless RoCE; physics reads only this.

    The defaults are a switch with no RoCE configuration: no PFC, no ECN, so
    congestion on the RoCE class drops packets.
    """

    pfc_priorities: frozenset[int] = frozenset()
    ecn: dict[int, EcnProfile] = field(default_factory=dict)
    dscp_to_tc: dict[int, int] = field(default_factory=dict)
    pfc_watchdog: bool = False
    pfc_watchdog_timeout_ms: int = 0
    pfc_watchdog_action: str = "drop"  # "drop" or "no-drop"; what EOS/VRP call the recovery action
    strict_priority_tcs: frozenset[int] = frozenset()
    # Per port: lossless priorities the port does not run lossless (per-port PFC disable on a storming port).
    pfc_disabled: dict[str, frozenset[int]] = field(default_factory=dict)
    # Per port: AS-path prepends this switch adds to what it advertises over the port's BGP session (cost-out).
    bgp_prepend: dict[str, int] = field(default_factory=dict)


@dataclass
class QueueCounters:
    """One egress queue (traffic class) of an interface; names follow openconfig-qos."""

    transmit_pkts: int = 0
    transmit_octets: int = 0
    dropped_pkts: int = 0
    dropped_octets: int = 0
    ecn_marked_pkts: int = 0
    depth_bytes: int = 0  # instantaneous, set by physics


@dataclass
class LaneOptics:
    """Per-lane optical readings of a transceiver (openconfig-platform-transceiver physical-channels)."""

    input_power_dbm: float = -2.0
    output_power_dbm: float = 1.0
    laser_bias_ma: float = 7.5


@dataclass
class InterfaceState:
    """A port: configuration effects, oper state, counters, optics."""

    name: str
    speed_gbps: int
    lanes: int = 8
    # Peer end as (hostname, interface) for switch links, ("host:<name>", "<nic>") for GPU NICs, None if unused.
    peer: tuple[str, str] | None = None
    kind: str = "unused"  # fabric | dci | host | unused
    description: str = ""
    # Point-to-point prefix in CIDR form from the source of truth (e.g. 10.0.0.0/31); platforms put it in their config.
    address: str = ""
    # Set by the platform from the running configuration.
    admin_up: bool = True
    mtu: int = 1500
    # Set by physics (and faults).
    oper_up: bool = True
    carrier_transitions: int = 0
    last_change_ns: int = field(default_factory=time.time_ns)
    in_octets: int = 0
    out_octets: int = 0
    in_unicast_pkts: int = 0
    out_unicast_pkts: int = 0
    in_errors: int = 0
    out_errors: int = 0
    in_fcs_errors: int = 0
    in_discards: int = 0
    out_discards: int = 0
    # Per priority 0..7 (PFC frames), plus the 802.3x totals OpenConfig models.
    pfc_rx_pause: list[int] = field(default_factory=lambda: [0] * TRAFFIC_CLASSES)
    pfc_tx_pause: list[int] = field(default_factory=lambda: [0] * TRAFFIC_CLASSES)
    pfc_watchdog_triggers: int = 0
    queues: list[QueueCounters] = field(default_factory=lambda: [QueueCounters() for _ in range(TRAFFIC_CLASSES)])
    fec_corrected_blocks: int = 0
    fec_uncorrectable_blocks: int = 0
    pre_fec_ber: float = 1e-9
    optics: list[LaneOptics] = field(default_factory=list)
    transceiver: str = ""  # optic type name, e.g. 800G-2xDR4
    temperature_c: float = 45.0
    # Gauges set by physics for convenience of the front ends (0..1 of line rate).
    in_utilisation: float = 0.0
    out_utilisation: float = 0.0

    def __post_init__(self) -> None:
        if not self.optics and self.transceiver:
            self.optics = [LaneOptics() for _ in range(self.lanes)]

    @property
    def in_pause_frames(self) -> int:
        return sum(self.pfc_rx_pause)

    @property
    def out_pause_frames(self) -> int:
        return sum(self.pfc_tx_pause)


@dataclass
class OpticalChannelState:
    """A coherent DWDM channel on a DCI device (openconfig-terminal-device logical channel + optical channel)."""

    index: int
    name: str
    interface: str  # the DCI interface this wavelength carries
    frequency_ghz: float
    spans: list[str] = field(default_factory=list)
    osnr_db: float = 30.0
    q_value_db: float = 12.0
    esnr_db: float = 22.0
    pre_fec_ber: float = 1e-5
    input_power_dbm: float = -8.0
    output_power_dbm: float = -8.0
    chromatic_dispersion_ps_nm: float = 0.0


@dataclass
class SwitchState:
    """One emulated switch. Platform front ends, physics and gNMI all work on this object."""

    hostname: str
    platform: str  # eos | huawei_vrp
    role: str
    mgmt_address: str
    eapi_port: int = 443
    ssh_port: int = 22
    gnmi_port: int = 6030
    model: str = ""
    serial: str = ""
    os_version: str = ""
    fabric: str = ""
    site: str = ""
    loopback: str = ""
    asn: int | None = None
    interfaces: dict[str, InterfaceState] = field(default_factory=dict)
    channels: dict[int, OpticalChannelState] = field(default_factory=dict)
    qos: QosSettings = field(default_factory=QosSettings)
    # False while the switch is down or rebooting: every front end stops answering.
    alive: bool = True
    boot_time: float = field(default_factory=time.time)
    cpu_utilisation: float = 5.0
    memory_total_bytes: int = 32 * 1024**3
    memory_used_bytes: int = 6 * 1024**3
    # Owned by the platform front end (its running/startup configuration, sessions, commit timers).
    platform_state: Any = field(default=None, repr=False, compare=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    # Called (without the lock held) after config effects change, so physics can recompute ECMP at once.
    listeners: list = field(default_factory=list, repr=False, compare=False)

    def apply_config_effects(
        self,
        qos: QosSettings,
        admin_up: dict[str, bool],
        mtu: dict[str, int] | None = None,
        descriptions: dict[str, str] | None = None,
    ) -> None:
        """Make a committed configuration take effect on the data plane.

        Platforms call this after every commit, rollback and automatic revert.
        Interfaces missing from ``admin_up`` keep their state.
        """
        changed_admin = []
        with self.lock:
            self.qos = qos
            for name, up in admin_up.items():
                iface = self.interfaces.get(name)
                if iface is not None and iface.admin_up != up:
                    iface.admin_up = up
                    changed_admin.append(name)
            for name, value in (mtu or {}).items():
                if name in self.interfaces:
                    self.interfaces[name].mtu = value
            for name, text in (descriptions or {}).items():
                if name in self.interfaces:
                    self.interfaces[name].description = text
        for listener in list(self.listeners):
            listener(self, changed_admin)

    @property
    def uptime_seconds(self) -> float:
        return max(0.0, time.time() - self.boot_time)


def make_switch(
    hostname: str,
    platform: str,
    mgmt_address: str,
    *,
    role: str = "leaf",
    ports: int = 4,
    speed_gbps: int = 400,
    transceiver: str = "400G-DR4",
    eapi_port: int = 443,
    ssh_port: int = 22,
    gnmi_port: int = 6030,
) -> SwitchState:
    """A stand-alone switch with ``ports`` unused interfaces named the platform's way (tests and tools)."""
    if platform == "huawei_vrp":
        names = [f"400GE1/0/{i}" if speed_gbps == 400 else f"{speed_gbps}GE1/0/{i}" for i in range(1, ports + 1)]
    else:
        names = [f"Ethernet{i}/1" for i in range(1, ports + 1)]
    switch = SwitchState(
        hostname=hostname,
        platform=platform,
        role=role,
        mgmt_address=mgmt_address,
        eapi_port=eapi_port,
        ssh_port=ssh_port,
        gnmi_port=gnmi_port,
    )
    for name in names:
        switch.interfaces[name] = InterfaceState(name=name, speed_gbps=speed_gbps, transceiver=transceiver)
    return switch

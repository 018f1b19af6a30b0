"""The configuration an emulated EOS switch boots with, built from what the lab knows about it.

It is the state of a freshly provisioned switch (ZTP base config): management reachability, a user, eAPI and
gNMI on, ports described and routed, BGP identity, but no RoCE QoS, so the lab starts lossy until the
product pushes its configuration. The text goes through the same grammar as anything pushed later.
"""

from __future__ import annotations

import hashlib

from fabric_ops.lab.state import SwitchState

__all__ = ["build_startup_config"]


def _secret_placeholder(hostname: str) -> str:
    """A sha512-crypt shaped value: the lab checks eAPI logins against the lab credential, not this line."""
    salt = hashlib.sha256(f"lab-salt-{hostname}".encode()).hexdigest()[:16]
    digest = hashlib.sha512(f"{salt}{hostname}".encode()).hexdigest()[:86]
    return f"$6${salt}${digest}"


def build_startup_config(switch: SwitchState, username: str = "admin") -> str:
    lines = [
        "service routing protocols model multi-agent",
        f"hostname {switch.hostname}",
        "spanning-tree mode none",
        f"username {username} privilege 15 role network-admin secret sha512 {_secret_placeholder(switch.hostname)}",
    ]
    for iface in switch.interfaces.values():
        lines.append(f"interface {iface.name}")
        if iface.description:
            lines.append(f"   description {iface.description}")
        if not iface.admin_up:
            lines.append("   shutdown")
        if iface.mtu != 1500:
            lines.append(f"   mtu {iface.mtu}")
        if iface.kind in ("fabric", "dci"):
            lines.append("   no switchport")
    if switch.loopback:
        address = switch.loopback if "/" in switch.loopback else f"{switch.loopback}/32"
        lines += ["interface Loopback0", f"   ip address {address}"]
    lines += ["interface Management1", f"   ip address {switch.mgmt_address}/24"]
    lines.append("ip routing")
    if switch.asn is not None:
        lines.append(f"router bgp {switch.asn}")
        if switch.loopback:
            lines.append(f"   router-id {switch.loopback.split('/')[0]}")
    lines += ["management api http-commands", "   no shutdown", "management api gnmi", "   transport grpc default"]
    if switch.gnmi_port != 6030:
        lines.append(f"      port {switch.gnmi_port}")
    return "\n".join(lines) + "\n"

"""``link-utilisation``: the busiest direction of a link at either end, as a fraction of its speed, from values
newer than the commit (a costed-out link stays up with its background traffic, so "drained" is a fraction)."""

from __future__ import annotations

import pytest

from fabric_ops.health.verification import Subject, measure

PORTS = (("leaf1", "Ethernet5/1"), ("spine1", "400GE1/0/1"))
SPEEDS = {"leaf1:Ethernet5/1": 400, "spine1:400GE1/0/1": 400}


def reader(values: dict[tuple[str, str], tuple[int, float, float]]):
    """Latest values as the collector's handoff keeps them: device -> series -> {ts, fields}."""

    def read(device: str):
        return {
            f"interface|interface={ifname}": {"ts": ts, "fields": {"out_bps": out, "in_bps": rx}}
            for (dev, ifname), (ts, out, rx) in values.items()
            if dev == device
        }

    return read


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({PORTS[0]: (20, 0.8e9, 0.8e9), PORTS[1]: (20, 0.8e9, 0.8e9)}, 0.002),  # background only
        ({PORTS[0]: (20, 200e9, 0.8e9), PORTS[1]: (20, 0.8e9, 200e9)}, 0.5),  # still carrying one way
        ({PORTS[0]: (20, 0.8e9, 0.8e9), PORTS[1]: (5, 0.8e9, 300e9)}, None),  # spine end not fresh yet
        ({PORTS[0]: (20, 0.8e9, 0.8e9)}, None),  # spine end unknown
    ],
)
def test_link_utilisation(values, expected):
    subject = Subject(ports=PORTS, extra={"port_speed_gbps": SPEEDS})
    value = measure("link-utilisation", subject, 10, reader(values))
    assert value == (pytest.approx(expected) if expected is not None else None)


def test_link_utilisation_needs_the_port_speed():
    subject = Subject(ports=PORTS, extra={"port_speed_gbps": {}})
    assert measure("link-utilisation", subject, 10, reader({p: (20, 1e9, 1e9) for p in PORTS})) is None


def states(values: dict[tuple[str, str], tuple[bool, bool]]):
    """Latest interface values with the ON_CHANGE state leaves: (admin_up, oper_up) per port."""

    def read(device: str):
        return {
            f"interface|interface={ifname}": {"ts": 1, "fields": {"admin_up": admin, "oper_up": oper}}
            for (dev, ifname), (admin, oper) in values.items()
            if dev == device
        }

    return read


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({PORTS[0]: (False, False), PORTS[1]: (False, False)}, 1.0),  # the shutdown is in force at both ends
        ({PORTS[0]: (True, False), PORTS[1]: (True, False)}, 0.0),  # down by the fault itself (a flap), not shut
        ({PORTS[0]: (False, False), PORTS[1]: (True, False)}, 0.0),  # one end not shut yet
        ({PORTS[0]: (False, True), PORTS[1]: (False, False)}, 0.0),  # admin-down but still up: not in force
        ({PORTS[0]: (False, False)}, None),  # the far end unknown
    ],
)
def test_link_shut(values, expected):
    assert measure("link-shut", Subject(ports=PORTS), 0, states(values)) == expected

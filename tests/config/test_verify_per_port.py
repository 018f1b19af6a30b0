"""Commit verification of a per-port change (a remediation on one port of many)."""

from __future__ import annotations


def test_a_per_port_change_deep_in_one_interface_is_in_force_though_other_ports_keep_the_old_line():
    """A hunk that starts inside a section names no parent: the context around it says which interface it is."""
    from fabric_ops.config.verify import missing_changes

    block = "   qos trust dscp\n   priority-flow-control on\n   no priority-flow-control priority {p}\n"
    ports = {
        "Ethernet1/1": "   priority-flow-control priority 3 drop\n",
        "Ethernet2/1": "   priority-flow-control priority 3 no-drop\n",
    }
    running = "".join(
        f"interface {name}\n   description x\n   mtu 9214\n" + block.format(p=2) + line + block.format(p=4) + "!\n"
        for name, line in ports.items()
    )
    diff = (
        "@@ -7,7 +7,7 @@\n"
        "    priority-flow-control on\n"
        "    no priority-flow-control priority 2\n"
        "-   priority-flow-control priority 3 no-drop\n"
        "+   priority-flow-control priority 3 drop\n"
        "    qos trust dscp\n"
    )
    assert missing_changes(diff, running) == []
    undone = running.replace("priority 3 drop", "priority 3 no-drop")  # reverted: not in force on any port
    assert missing_changes(diff, undone) == [
        "still present: priority-flow-control priority 3 no-drop",
        "missing: priority-flow-control priority 3 drop",
    ]

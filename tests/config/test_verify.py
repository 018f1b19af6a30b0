import pytest

from fabric_ops.config.verify import missing_changes

EOS_RUNNING = """! Command: show running-config
! device: leaf1 (DCS-7060DX5-64S, EOS-4.33.1F)
!
hostname leaf1
qos map dscp 26 to traffic-class 3
!
interface Ethernet1/1
   description gpu hosts
   mtu 9214
   priority-flow-control on
   tx-queue 3
      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes
!
interface Ethernet2/1
   description gpu hosts
   mtu 9214
!
end
"""

EOS_DIFF = """--- system:/running-config
+++ session:/napalm_1-session-config
@@ -3,9 +3,12 @@
 hostname leaf1
+qos map dscp 26 to traffic-class 3
 !
 interface Ethernet1/1
    description gpu hosts
-   mtu 1500
+   mtu 9214
+   priority-flow-control on
+   tx-queue 3
+      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes
 !
"""

VRP_RUNNING = """!Last configuration was updated at 2026-11-27 23:00:00+00:00
#
sysname spine1
#
interface 400GE1/0/1
 description leaf1
 undo portswitch
 ip address 10.1.0.1 255.255.255.254
 trust dscp
#
bgp 65100
 router-id 10.255.1.1
 #
 ipv4-family unicast
  maximum load-balancing ebgp 64
#
return
"""

VRP_DIFF = """#
interface 400GE1/0/1
- ip address 10.1.0.1 31
+ ip address 10.1.0.1 255.255.255.254
+ trust dscp
#
+bgp 65100
+ router-id 10.255.1.1
+ #
+ ipv4-family unicast
+  maximum load-balancing ebgp 64
"""


@pytest.mark.parametrize(
    ("diff", "running", "expected"),
    [
        (EOS_DIFF, EOS_RUNNING, []),
        (VRP_DIFF, VRP_RUNNING, []),
        # the ECN line landed under the wrong port: not in force where the diff put it
        (
            EOS_DIFF,
            EOS_RUNNING.replace("   priority-flow-control on\n", "").replace(
                "interface Ethernet2/1\n", "interface Ethernet2/1\n   priority-flow-control on\n"
            ),
            ["missing: interface Ethernet1/1 > priority-flow-control on"],
        ),
        (
            EOS_DIFF,
            EOS_RUNNING.replace("   mtu 9214\n   priority", "   mtu 1500\n   priority"),
            ["still present: interface Ethernet1/1 > mtu 1500", "missing: interface Ethernet1/1 > mtu 9214"],
        ),
        (
            VRP_DIFF,
            VRP_RUNNING.replace("  maximum load-balancing ebgp 64\n", ""),
            ["missing: bgp 65100 > ipv4-family unicast > maximum load-balancing ebgp 64"],
        ),
        (VRP_DIFF, VRP_RUNNING.replace(" trust dscp\n", ""), ["missing: interface 400GE1/0/1 > trust dscp"]),
        ("", EOS_RUNNING, []),
    ],
)
def test_missing_changes(diff, running, expected):
    assert missing_changes(diff, running) == expected


def test_hunk_starting_inside_a_section_is_matched_by_its_known_parents():
    diff = "@@ -10,3 +10,4 @@\n    description gpu hosts\n    mtu 9214\n+   tx-queue 3\n"
    running = "interface Ethernet1/1\n   description gpu hosts\n   mtu 9214\n   tx-queue 3\n"
    assert missing_changes(diff, running) == []
    assert missing_changes(diff, running.replace("   tx-queue 3\n", "")) == ["missing: tx-queue 3"]


def test_a_third_level_line_is_checked_under_its_own_parents():
    """The ECN line belongs to tx-queue 3 of Ethernet1/1: under tx-queue 6, or on Ethernet2/1, it is not in force."""
    line = "      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes\n"
    wrong_queue = EOS_RUNNING.replace("   tx-queue 3\n" + line, "   tx-queue 6\n" + line + "   tx-queue 3\n")
    expected = [
        "missing: interface Ethernet1/1 > tx-queue 3 > "
        "random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes"
    ]
    assert missing_changes(EOS_DIFF, wrong_queue) == expected
    wrong_port = EOS_RUNNING.replace("   tx-queue 3\n" + line, "   tx-queue 3\n").replace(
        "interface Ethernet2/1\n", "interface Ethernet2/1\n   tx-queue 3\n" + line
    )
    assert missing_changes(EOS_DIFF, wrong_port) == expected

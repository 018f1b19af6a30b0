"""The lab grammar and data-plane effects of the two remediation configurations: BGP cost-out and per-port PFC off.

EOS: ``route-map M permit 10`` / ``set as-path prepend ...`` attached with ``neighbor X route-map M out``, and
``priority-flow-control priority N drop`` under one interface. CloudEngine: ``route-policy P permit node 10`` /
``apply as-path ... additive`` exported with ``peer X route-policy P export``, and ``undo dcb pfc enable``.
"""

from __future__ import annotations

import pytest

from fabric_ops.lab.eos.config import ConfigTree
from fabric_ops.lab.eos.effects import DENY_PREPEND, compute_effects
from fabric_ops.lab.eos.grammar import CliError
from fabric_ops.lab.huawei_vrp.config import parse
from fabric_ops.lab.huawei_vrp.effects import compute
from fabric_ops.lab.huawei_vrp.grammar import VIEWS, Context, Failure, match

EOS_BASE = """\
interface Ethernet1/1
   priority-flow-control on
   priority-flow-control priority 3 no-drop
interface Ethernet3/1
   no switchport
   ip address 10.0.0.1/31
   priority-flow-control on
   priority-flow-control priority 3 no-drop
interface Ethernet4/1
   no switchport
   ip address 10.0.0.5/31
   priority-flow-control on
   priority-flow-control priority 3 no-drop
route-map FABRICOPS-COST-OUT permit 10
   set as-path prepend 65101 65101 65101
router bgp 65101
   neighbor 10.0.0.0 remote-as 65000
   neighbor 10.0.0.4 remote-as 65000
"""


def eos(text: str) -> ConfigTree:
    tree = ConfigTree(["Ethernet1/1", "Ethernet3/1", "Ethernet4/1"])
    tree.load_text(text)
    return tree


def test_eos_cost_out_prepends_on_the_port_of_the_neighbour_and_no_form_removes_it():
    base = compute_effects(eos(EOS_BASE)).qos
    assert base.bgp_prepend == {} and base.pfc_disabled == {}
    tree = eos(EOS_BASE + "   neighbor 10.0.0.4 route-map FABRICOPS-COST-OUT out\n")
    assert compute_effects(tree).qos.bgp_prepend == {"Ethernet4/1": 3}
    assert "   neighbor 10.0.0.4 route-map FABRICOPS-COST-OUT out" in tree.text()
    cursor = tree.cursor()
    tree.apply(cursor, "router bgp 65101")
    tree.apply(cursor, "no neighbor 10.0.0.4 route-map FABRICOPS-COST-OUT out")
    assert compute_effects(tree).qos.bgp_prepend == {}
    assert "route-map FABRICOPS-COST-OUT out" not in tree.text()
    assert "route-map FABRICOPS-COST-OUT permit 10" in tree.text()  # the definition stays


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("route-map R permit 10\n   set as-path prepend auto auto\nrouter bgp 65101\n"
         "   neighbor 10.0.0.0 route-map R out\n", {"Ethernet3/1": 2}),
        ("route-map R deny 10\nrouter bgp 65101\n   neighbor 10.0.0.0 route-map R out\n",
         {"Ethernet3/1": DENY_PREPEND}),
        ("route-map R permit 10\n   set metric 100\nrouter bgp 65101\n   neighbor 10.0.0.0 route-map R out\n", {}),
        ("router bgp 65101\n   neighbor 10.0.0.0 route-map MISSING out\n", {}),  # permits unchanged
        ("router bgp 65101\n   neighbor 10.9.9.9 route-map FABRICOPS-COST-OUT out\n", {}),  # on no port's subnet
    ],
)  # fmt: skip
def test_eos_route_map_table(extra, expected):
    assert compute_effects(eos(EOS_BASE + extra)).qos.bgp_prepend == expected


@pytest.mark.parametrize(
    "line",
    ["route-map R permit", "route-map R allow 10", "neighbor 10.0.0.0 route-map R in", "set as-path prepend x"],
)
def test_eos_refuses_what_the_lab_does_not_model(line):
    tree = eos(EOS_BASE)
    cursor = tree.cursor()
    if line.startswith("neighbor"):
        tree.apply(cursor, "router bgp 65101")
    if line.startswith("set"):
        tree.apply(cursor, "route-map R permit 10")
    with pytest.raises(CliError, match=r"Invalid input|Incomplete"):
        tree.apply(cursor, line)


def test_eos_pfc_drop_on_one_port_disables_pfc_there_only():
    qos = compute_effects(eos(EOS_BASE + "interface Ethernet1/1\n   priority-flow-control priority 3 drop\n")).qos
    assert qos.pfc_priorities == frozenset({3})  # still lossless on the other ports
    assert qos.pfc_disabled == {"Ethernet1/1": frozenset({3})}
    back = eos(EOS_BASE + "interface Ethernet1/1\n   priority-flow-control priority 3 no-drop\n")
    assert compute_effects(back).qos.pfc_disabled == {}


VRP_BASE = """\
dcb pfc
 priority 3
interface 400GE1/0/1
 trust dscp
 dcb pfc enable mode manual
interface 400GE1/0/3
 undo portswitch
 ip address 10.0.0.1 255.255.255.254
 trust dscp
 dcb pfc enable mode manual
bgp 65101
 peer 10.0.0.0 as-number 65000
 ipv4-family unicast
  peer 10.0.0.0 enable
route-policy FABRICOPS-COST-OUT permit node 10
 apply as-path 65101 65101 65101 additive
"""
VRP_PORTS = ["400GE1/0/1", "400GE1/0/3"]


def test_vrp_cost_out_and_pfc_off_effects():
    base = compute(parse(VRP_BASE), VRP_PORTS).qos
    assert base.bgp_prepend == {} and base.pfc_disabled == {} and base.pfc_priorities == frozenset({3})
    costed = VRP_BASE.replace("  peer 10.0.0.0 enable\n", "  peer 10.0.0.0 enable\n"
                              "  peer 10.0.0.0 route-policy FABRICOPS-COST-OUT export\n")  # fmt: skip
    assert compute(parse(costed), VRP_PORTS).qos.bgp_prepend == {"400GE1/0/3": 3}
    importing = costed.replace(" export\n", " import\n")
    assert compute(parse(importing), VRP_PORTS).qos.bgp_prepend == {}  # import changes what we receive, not send
    overwrite = costed.replace(" additive\n", " overwrite\n")
    assert compute(parse(overwrite), VRP_PORTS).qos.bgp_prepend == {}
    off = VRP_BASE.replace("interface 400GE1/0/1\n trust dscp\n dcb pfc enable mode manual\n",
                           "interface 400GE1/0/1\n trust dscp\n")  # fmt: skip
    qos = compute(parse(off), VRP_PORTS).qos
    assert qos.pfc_disabled == {"400GE1/0/1": frozenset({3})} and qos.pfc_priorities == frozenset({3})


@pytest.mark.parametrize(
    ("view", "line", "error"),
    [
        ("system", "route-policy FABRICOPS-COST-OUT permit node 10", None),
        ("route-policy", "apply as-path 65101 65101 65101 additive", None),
        ("route-policy", "apply as-path 65101 overwrite", None),
        ("route-policy", "apply as-path additive", "wrong"),
        ("route-policy", "apply as-path 65101", "incomplete"),
        ("bgp-af", "peer 10.0.0.0 route-policy FABRICOPS-COST-OUT export", None),
        ("bgp-af", "peer 10.0.0.0 route-policy FABRICOPS-COST-OUT both", "unrecognized"),
        ("interface", "dcb pfc enable mode manual", None),
    ],
)
def test_vrp_grammar_table(view, line, error):
    result = match(VIEWS[view], line, Context({}))
    if error is None:
        assert not isinstance(result, Failure), result
    else:
        assert isinstance(result, Failure) and result.kind == error

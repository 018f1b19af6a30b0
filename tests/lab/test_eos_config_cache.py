"""The lab's EOS line matching is cached per (mode, tokens, autoComplete): repeated lines behave like first ones."""

import pytest

from fabric_ops.lab.eos import config as eos_config
from fabric_ops.lab.eos.config import ConfigTree
from fabric_ops.lab.eos.grammar import CliError

CONFIG = """hostname leaf1
interface Ethernet1/1
   mtu 9214
   priority-flow-control on
   no priority-flow-control priority 0
   priority-flow-control priority 3 no-drop
   tx-queue 3
      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes max-mark-probability 20
interface Ethernet2/1
   mtu 9214
   priority-flow-control on
   no priority-flow-control priority 0
   priority-flow-control priority 3 no-drop
   tx-queue 3
      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes max-mark-probability 20
router bgp 65001
   neighbor 10.0.0.1 remote-as 65000
"""


def _tree() -> ConfigTree:
    return ConfigTree(["Ethernet1/1", "Ethernet2/1"])


def test_cold_and_warm_cache_give_the_same_configuration():
    eos_config._match_in_mode.cache_clear()
    eos_config._short_no_rule.cache_clear()
    cold = _tree()
    cold.load_text(CONFIG)
    assert eos_config._match_in_mode.cache_info().currsize  # the lines were looked up through the cache
    warm = _tree()
    warm.load_text(CONFIG)
    assert warm.text() == cold.text()
    block = cold.text().split("interface Ethernet2/1\n", 1)[1].split("\n!\n", 1)[0]
    assert "   mtu 9214\n" in block and "   priority-flow-control priority 3 no-drop\n" in block
    assert "\n   tx-queue 3\n      random-detect ecn minimum-threshold 150 kbytes" in block  # per port
    assert "\n   neighbor 10.0.0.1 remote-as 65000" in cold.text()  # fell through tx-queue and interface


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_refused_line_gives_the_same_error_every_time(attempt):
    if attempt == 1:
        eos_config._match_in_mode.cache_clear()
    tree = _tree()
    cursor = tree.cursor()
    tree.apply(cursor, "interface Ethernet1/1")
    with pytest.raises(CliError) as excinfo:
        tree.apply(cursor, "priority-flow-control priority 9 no-drop")
    assert excinfo.value.message == "Invalid input (at token 2: '9')"
    with pytest.raises(CliError) as excinfo:
        tree.apply(cursor, "mtu 99999")
    assert excinfo.value.message == "Invalid input (at token 1: '99999')"
    tree.apply(cursor, "no mtu bogus extra")  # "no mtu" with arguments left over is accepted, as before


def test_autocomplete_is_part_of_the_cache_key():
    tree = _tree()
    cursor = tree.cursor()
    tree.apply(cursor, "interface Ethernet1/1")
    tree.apply(cursor, "mt 9000", autocomplete=True)  # eAPI autoComplete: "mt" stands for "mtu"
    assert "   mtu 9000" in tree.text()
    with pytest.raises(CliError):
        tree.apply(cursor, "mt 9000")  # the same tokens without autoComplete are refused, cached or not

import pytest

from fabric_ops.config.rendering import TemplateRenderError, render_template


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "t").mkdir()
    ok = "hostname {{ hostname }}\n{% for i in interfaces %}interface {{ i }}\n{% endfor %}"
    (tmp_path / "t" / "ok.j2").write_text(ok)
    (tmp_path / "t" / "missing.j2").write_text("hostname {{ hostname }}\n!\nrouter bgp {{ asn }}\n")
    (tmp_path / "t" / "syntax.j2").write_text("hostname {{ hostname }}\n{% if %}\n")
    (tmp_path / "t" / "escape.j2").write_text("{{ ''.__class__.__mro__ }}\n")
    return tmp_path


def test_renders(templates):
    text = render_template("t/ok.j2", {"hostname": "leaf1", "interfaces": ["Ethernet1/1"]}, templates)
    assert text == "hostname leaf1\ninterface Ethernet1/1\n"


def test_missing_variable_names_template_line_and_variable(templates):
    with pytest.raises(TemplateRenderError) as excinfo:
        render_template("t/missing.j2", {"hostname": "leaf1"}, templates)
    assert str(excinfo.value) == "t/missing.j2:3: 'asn' is undefined"


def test_syntax_error_names_the_line(templates):
    with pytest.raises(TemplateRenderError, match=r"^t/syntax.j2:2: syntax error"):
        render_template("t/syntax.j2", {"hostname": "x"}, templates)


def test_sandbox_blocks_python_internals(templates):
    with pytest.raises(TemplateRenderError, match=r"unsafe|__class__"):
        render_template("t/escape.j2", {}, templates)


def test_unknown_template(templates):
    with pytest.raises(TemplateRenderError, match="template not found"):
        render_template("t/nope.j2", {}, templates)


# --- per-port remediation overrides rendered by the platform templates -------------------------------------------
@pytest.fixture
def lab_devices(db):
    from django.conf import settings

    from fabric_ops.topology.inventory import import_inventory

    import_inventory(settings.INVENTORY_DIR / "lab.yml")


def _port_overrides(hostname: str, **ports):
    from fabric_ops.config.models import IntentAssignment
    from fabric_ops.topology.models import Device

    device = Device.objects.select_related("fabric").get(hostname=hostname)
    assignment, _ = IntentAssignment.objects.get_or_create(fabric=device.fabric, role="", device=device)
    assignment.overrides = {**assignment.overrides, **ports}
    assignment.full_clean()
    assignment.save()
    return device


def _leaf_uplink():
    """sjc-leaf1's first uplink: (leaf port, spine hostname, spine port, leaf address, spine address)."""
    from fabric_ops.config.context import device_context
    from fabric_ops.topology.models import Device

    ctx = device_context(Device.objects.get(hostname="sjc-leaf1"))
    up = next(i for i in ctx["interfaces"] if i["kind"] == "fabric")
    peer = next(n for n in ctx["bgp_neighbors"] if n["interface"] == up["name"])
    spine = device_context(Device.objects.get(hostname=up["peer_device"]))
    back = next(n for n in spine["bgp_neighbors"] if n["interface"] == up["peer_interface"])
    return up["name"], up["peer_device"], up["peer_interface"], back["address"], peer["address"]


def test_cost_out_renders_the_policy_on_that_session_only_on_both_platforms(lab_devices):
    from fabric_ops.config.rendering import render_device
    from fabric_ops.topology.models import Device

    leaf_port, spine, spine_port, leaf_addr, spine_addr = _leaf_uplink()
    plain = render_device(_port_overrides("sjc-leaf1"))
    assert f"   no neighbor {spine_addr} route-map FABRICOPS-COST-OUT out\n" in plain
    asn = Device.objects.get(hostname="sjc-leaf1").asn
    assert f"route-map FABRICOPS-COST-OUT permit 10\n   set as-path prepend {asn} {asn} {asn}\n" in plain
    leaf = render_device(_port_overrides("sjc-leaf1", bgp_cost_out=[leaf_port]))
    assert f"\n   neighbor {spine_addr} route-map FABRICOPS-COST-OUT out\n" in leaf
    assert sum(1 for line in leaf.splitlines() if line.startswith("   neighbor ") and line.endswith(" out")) == 1

    vrp = render_device(_port_overrides(spine, bgp_cost_out=[spine_port]))
    assert f"\n  peer {leaf_addr} route-policy FABRICOPS-COST-OUT export\n" in vrp
    assert sum(1 for line in vrp.splitlines() if line.startswith("  peer ") and line.endswith(" export")) == 1
    assert "route-policy FABRICOPS-COST-OUT permit node 10\n apply as-path" in vrp
    assert vrp.count("  undo peer ") >= 1  # the other sessions say so explicitly: merge never removes a line


def test_pfc_disabled_port_renders_drop_on_eos_and_undo_enable_on_vrp(lab_devices):
    from fabric_ops.config.rendering import render_device

    leaf = render_device(_port_overrides("sjc-leaf1", pfc_disabled_ports=["Ethernet1/1"]))
    block = leaf.split("interface Ethernet1/1\n", 1)[1].split("!\n", 1)[0]
    assert "   priority-flow-control priority 3 drop\n" in block and "priority 3 no-drop" not in block
    other = leaf.split("interface Ethernet2/1\n", 1)[1].split("!\n", 1)[0]
    assert "   priority-flow-control priority 3 no-drop\n" in other

    _, spine, spine_port, _, _ = _leaf_uplink()
    vrp = render_device(_port_overrides(spine, pfc_disabled_ports=[spine_port]))
    block = vrp.split(f"interface {spine_port}\n", 1)[1].split("#\n", 1)[0]
    assert " undo dcb pfc enable\n" in block
    assert vrp.count(" dcb pfc enable mode manual\n") >= 1  # the other ports keep PFC


@pytest.mark.parametrize(
    ("scope", "ports", "message"),
    [
        ("device", ["Ethernet99/1"], "has no interface"),
        ("device", "Ethernet1/1", "list of interface names"),
        ("device", [""], "list of interface names"),
        ("fabric", ["Ethernet1/1"], "only a device's own assignment"),
    ],
)
def test_port_overrides_are_validated(lab_devices, scope, ports, message):
    from django.core.exceptions import ValidationError

    from fabric_ops.config.models import IntentAssignment
    from fabric_ops.topology.models import Device

    device = Device.objects.select_related("fabric").get(hostname="sjc-leaf1")
    assignment = IntentAssignment(fabric=device.fabric, role="", device=device if scope == "device" else None,
                                  overrides={"bgp_cost_out": ports})  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        assignment.full_clean()


# --- rendering many devices at once (push jobs): same text, a constant number of queries ----------------------------
def _varied_intents():
    """Assignments at every level (fabric, role, device, per-port) so the bulk path merges like the per-device one."""
    from fabric_ops.config.models import IntentAssignment, RoceProfile, UnderlayProfile
    from fabric_ops.topology.models import Device

    leaf = Device.objects.select_related("fabric").get(hostname="sjc-leaf1")
    fabric_roce = RoceProfile.objects.create(name="bulk-fabric", mtu=9000, ecn_max_probability=10)
    role_roce = RoceProfile.objects.create(name="bulk-leaf", lossless_priorities=[3, 4], mtu=9000)
    underlay = UnderlayProfile.objects.create(name="bulk-underlay", bfd=False)
    IntentAssignment.objects.create(fabric=leaf.fabric, roce_profile=fabric_roce, underlay_profile=underlay)
    IntentAssignment.objects.create(fabric=leaf.fabric, role="leaf", roce_profile=role_roce)
    _port_overrides("sjc-leaf1", bgp_cost_out=[_leaf_uplink()[0]], pfc_disabled_ports=["Ethernet2/1"])
    return leaf


def test_render_devices_is_byte_identical_to_render_device(lab_devices):
    from fabric_ops.config.rendering import render_device, render_devices
    from fabric_ops.topology.models import Device

    _varied_intents()
    devices = list(Device.objects.order_by("hostname"))
    assert len(devices) > 4
    bulk = list(render_devices(devices))
    assert [device.hostname for device, _ in bulk] == [device.hostname for device in devices]
    for device, text in bulk:
        assert isinstance(text, str), text
        assert text == render_device(Device.objects.get(pk=device.pk)), device.hostname
    leaf = dict((d.hostname, t) for d, t in bulk)["sjc-leaf1"]
    # the intents took effect: role profile, device port overrides; the fabric-wide profile on the spines
    assert "   mtu 9000\n" in leaf and "priority-flow-control priority 4 no-drop" in leaf
    assert "priority-flow-control priority 3 drop" in leaf and "FABRICOPS-COST-OUT out" in leaf
    spine = next(t for d, t in bulk if d.role == "spine" and d.platform == "eos")
    assert "   mtu 9000\n" not in spine and "priority-flow-control priority 4 no-drop" not in spine


def test_render_devices_query_count_does_not_grow_with_devices(lab_devices):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from fabric_ops.config.rendering import render_devices
    from fabric_ops.topology.models import Device

    _varied_intents()
    devices = list(Device.objects.order_by("hostname"))
    with CaptureQueriesContext(connection) as few:
        list(render_devices(devices[:2]))
    with CaptureQueriesContext(connection) as many:
        list(render_devices(devices))
    assert len(many) == len(few) <= 7, [q["sql"] for q in many.captured_queries]


def test_render_devices_reports_a_bad_intent_for_that_device_only(lab_devices):
    from fabric_ops.config.models import IntentAssignment
    from fabric_ops.config.rendering import render_devices
    from fabric_ops.errors import ConfigurationError
    from fabric_ops.topology.models import Device

    leaf = Device.objects.select_related("fabric").get(hostname="sjc-leaf1")
    # Saved without validation, as a stale assignment would be after its interface was renamed.
    IntentAssignment.objects.create(fabric=leaf.fabric, device=leaf, overrides={"bgp_cost_out": ["Ethernet99/1"]})
    results = dict((d.hostname, t) for d, t in render_devices(Device.objects.order_by("hostname")))
    assert isinstance(results.pop("sjc-leaf1"), ConfigurationError)
    assert results and all(isinstance(text, str) for text in results.values())

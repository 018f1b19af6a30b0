import pytest
from django.core.exceptions import ValidationError

from fabric_ops.config.intents import resolve_intent
from fabric_ops.config.models import IntentAssignment, RoceProfile, UnderlayProfile
from fabric_ops.errors import ConfigurationError
from fabric_ops.topology.models import Device, Fabric, Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def fabric():
    site = Site.objects.create(name="sjc1", city="San Jose")
    fabric = Fabric.objects.create(name="f1", kind="rail-optimized", site=site)
    for hostname, role in [("leaf1", "leaf"), ("leaf2", "leaf"), ("spine1", "spine")]:
        Device.objects.create(hostname=hostname, fabric=fabric, site=site, role=role, platform="eos")
    return fabric


def test_defaults_apply_without_any_assignment(fabric):
    intent = resolve_intent(Device.objects.get(hostname="leaf1"))
    assert intent.roce["lossless_priorities"] == [3]
    assert (intent.roce["roce_dscp"], intent.roce["cnp_dscp"], intent.roce["mtu"]) == (26, 48, 9214)
    assert intent.underlay["ecmp_width"] == 64
    assert intent.sources == []


def test_more_specific_assignment_wins_field_by_field(fabric):
    base = RoceProfile.objects.create(name="base", ecn_min_kbytes=100, ecn_max_kbytes=1000)
    leaves = RoceProfile.objects.create(name="leaves", ecn_min_kbytes=200, ecn_max_kbytes=2000)
    leaf2 = Device.objects.get(hostname="leaf2")
    IntentAssignment.objects.create(fabric=fabric, roce_profile=base)
    IntentAssignment.objects.create(fabric=fabric, role="leaf", roce_profile=leaves)
    IntentAssignment.objects.create(fabric=fabric, device=leaf2, overrides={"ecn_min_kbytes": 300, "bfd": False})

    spine = resolve_intent(Device.objects.get(hostname="spine1"))
    leaf1 = resolve_intent(Device.objects.get(hostname="leaf1"))
    leaf2_intent = resolve_intent(leaf2)
    assert spine.roce["ecn_min_kbytes"] == 100
    assert leaf1.roce["ecn_min_kbytes"] == 200
    assert (leaf2_intent.roce["ecn_min_kbytes"], leaf2_intent.roce["ecn_max_kbytes"]) == (300, 2000)
    assert leaf2_intent.underlay["bfd"] is False
    assert leaf2_intent.sources == ["f1/all", "f1/leaf", "f1/leaf2"]


def test_unknown_override_is_refused_naming_the_field(fabric):
    assignment = IntentAssignment(fabric=fabric, overrides={"ecn_minimum": 5})
    with pytest.raises(ValidationError, match="ecn_minimum"):
        assignment.clean()
    IntentAssignment.objects.create(fabric=fabric, overrides={"ecn_minimum": 5})
    with pytest.raises(ConfigurationError, match="ecn_minimum"):
        resolve_intent(Device.objects.get(hostname="leaf1"))


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"ecn_min_kbytes": 2000, "ecn_max_kbytes": 1000}, "ecn_max_kbytes"),
        ({"cnp_dscp": 26}, "cnp_dscp"),
        ({"roce_dscp": 64}, "roce_dscp"),
        ({"lossless_priorities": [8]}, "lossless_priorities"),
        ({"ecn_max_probability": 0}, "ecn_max_probability"),
        ({"mtu": 10000}, "mtu"),
    ],
)
def test_roce_profile_validation_names_the_field(fields, bad_field):
    with pytest.raises(ValidationError) as excinfo:
        RoceProfile(name="bad", **fields).clean()
    assert bad_field in excinfo.value.message_dict


def test_underlay_profile_validation():
    with pytest.raises(ValidationError, match="hash_fields"):
        UnderlayProfile(name="u", hash_fields=["vlan"]).clean()
    with pytest.raises(ValidationError, match="bgp_hold_s"):
        UnderlayProfile(name="u", bgp_keepalive_s=10, bgp_hold_s=9).clean()
    UnderlayProfile(name="u").clean()

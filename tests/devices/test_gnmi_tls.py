"""gNMI to the switches over TLS, verified against the deployment's CA bundle (the default with DEBUG off).

A lab gNMI listener with a certificate for its management address stands in for a switch; the product side is the
post-push check (plain gRPC stub) and the collector's target list (pygnmi). Listeners use 127.19.7.0/24.
"""

from __future__ import annotations

import pytest

from fabric_ops.devices.credentials import Credential
from fabric_ops.devices.gnmi import check_gnmi, gnmi_transport
from fabric_ops.errors import ConfigurationError, DeviceError
from fabric_ops.lab.gnmi import serve
from fabric_ops.lab.state import make_switch
from fabric_ops.lab.tls import self_signed_certificate
from fabric_ops.telemetry.influxd import free_port
from fabric_ops.telemetry.targets import load_targets
from tests.topology.factories import two_tier

pytestmark = pytest.mark.django_db
ADDRESS = "127.19.7.1"
CRED = Credential("admin", "tls-secret")


@pytest.fixture
def tls_switch(settings, monkeypatch, tmp_path):
    """One lab switch whose gNMI speaks TLS only, its CA file, and the Device row pointing at it."""
    port = free_port(ADDRESS)
    cert, key = self_signed_certificate("leaf-tls", [ADDRESS])
    ca_file = tmp_path / "gnmi-ca.pem"
    ca_file.write_bytes(cert)
    server = serve([make_switch("f2-leaf1", "eos", ADDRESS, ports=2, gnmi_port=port)], CRED, tls=(cert, key))
    monkeypatch.setenv("FABRIC_OPS_CRED_TLSLAB_USERNAME", CRED.username)
    monkeypatch.setenv("FABRIC_OPS_CRED_TLSLAB_PASSWORD", CRED.password)
    device = two_tier().devices["f2-leaf1"]
    device.mgmt_address, device.gnmi_port, device.credential = ADDRESS, port, "tlslab"
    device.save()
    settings.FABRIC_OPS_GNMI_TLS, settings.FABRIC_OPS_GNMI_TLS_CA = True, str(ca_file)
    yield device, ca_file
    server.stop()


def test_post_push_check_verifies_the_switch_certificate(tls_switch, settings, tmp_path):
    device, _ = tls_switch
    check_gnmi(device)  # TLS, chained to the CA bundle, name checked against the management address
    other, _ = self_signed_certificate("impostor", [ADDRESS])
    (tmp_path / "other-ca.pem").write_bytes(other)
    settings.FABRIC_OPS_GNMI_TLS_CA = str(tmp_path / "other-ca.pem")
    with pytest.raises(DeviceError, match=r"f2-leaf1: gNMI at 127\.19\.7\.1:.* did not answer"):
        check_gnmi(device, timeout=3)  # a certificate this deployment does not trust is refused
    settings.FABRIC_OPS_GNMI_TLS = False
    with pytest.raises(DeviceError, match="f2-leaf1"):
        check_gnmi(device, timeout=3)  # and plain gRPC does not reach a TLS-only listener


def test_tls_without_a_ca_bundle_is_refused_naming_the_settings(settings, tmp_path):
    settings.FABRIC_OPS_GNMI_TLS, settings.FABRIC_OPS_GNMI_TLS_CA = True, ""
    with pytest.raises(ConfigurationError, match="FABRIC_OPS_GNMI_TLS_CA names no CA bundle"):
        gnmi_transport()
    settings.FABRIC_OPS_GNMI_TLS_CA = str(tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match=r"FABRIC_OPS_GNMI_TLS_CA=.*missing\.pem"):
        gnmi_transport()
    settings.FABRIC_OPS_GNMI_TLS = False
    assert gnmi_transport().tls is False


def test_collector_targets_carry_the_deployment_transport(tls_switch):
    _, ca_file = tls_switch
    target = next(t for t in load_targets("f2") if t.hostname == "f2-leaf1")
    assert target.insecure is False and target.tls_ca == str(ca_file)
    assert all(t.insecure for t in load_targets("f2", insecure=True))  # the lab's plain gRPC when asked


def test_tls_is_the_default_whenever_debug_is_off():
    import os
    import subprocess
    import sys

    code = "from django.conf import settings; print(settings.FABRIC_OPS_GNMI_TLS)"
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "fabric_ops.settings", "FABRIC_OPS_SECRET_KEY": "k" * 50}
    base.pop("FABRIC_OPS_GNMI_TLS", None)
    for debug, expected in (("0", "True"), ("1", "False")):
        run = subprocess.run([sys.executable, "-c", code], env={**base, "FABRIC_OPS_DEBUG": debug},
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert run.stdout.strip() == expected, run.stderr

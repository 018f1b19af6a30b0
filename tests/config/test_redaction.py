import pytest

from fabric_ops.config.redaction import redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            " username admin privilege 15 role network-admin secret sha512 $6$abc$def",
            " username admin privilege 15 role network-admin secret sha512 <removed>",
        ),
        ("   neighbor 10.0.0.1 password 7 0822455D0A16", "   neighbor 10.0.0.1 password 7 <removed>"),
        ("snmp-server community public ro", "snmp-server community <removed> ro"),
        ("tacacs-server key 7 070C285F4D06", "tacacs-server key 7 <removed>"),
        (
            " local-user admin password irreversible-cipher $1c$xyz$",
            " local-user admin password irreversible-cipher <removed>",
        ),
        ("   mtu 9214", "   mtu 9214"),
        ("+  description key spine uplink", "+  description key spine uplink"),
    ],
)
def test_redact(line, expected):
    assert redact(line) == expected
    assert redact(redact(line)) == expected

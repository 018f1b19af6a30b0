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
        ("snmp-agent community read cipher %^%#abc%^%#", "snmp-agent community read cipher <removed>"),
        ("radius-server shared-key cipher %^%#xyz", "radius-server shared-key cipher <removed>"),
        (
            "snmp-server user ops grp v3 auth sha s3cret priv aes128 s3cret2",
            "snmp-server user ops grp v3 auth sha <removed> priv aes128 <removed>",
        ),
        ("ntp authentication-key 1 md5 7 0822455D0A16", "ntp authentication-key 1 md5 7 <removed>"),
        ("   ip ospf message-digest-key 1 md5 k3y", "   ip ospf message-digest-key 1 md5 <removed>"),
        (" isis authentication-mode md5 cipher %^%#q", " isis authentication-mode md5 cipher <removed>"),
        ("+  description key spine uplink", "+  description key spine uplink"),
    ],
)
def test_redact(line, expected):
    assert redact(line) == expected
    assert redact(redact(line)) == expected

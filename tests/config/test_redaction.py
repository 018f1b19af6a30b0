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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Upper case: the shortcut compares lower-cased text, the patterns ignore case.
        ("   neighbor 10.0.0.1 PASSWORD 7 0822455D0A16", "   neighbor 10.0.0.1 PASSWORD 7 <removed>"),
        ("SNMP-SERVER COMMUNITY public ro", "SNMP-SERVER COMMUNITY <removed> ro"),
        # Non-ASCII text: case-insensitive regexes match "\u017f" as "s" and "\u212a" as "k"; lower() does not.
        ("username admin \u017fecret sha512 $6$abc", "username admin \u017fecret sha512 <removed>"),
        ("ntp authentication-\u212aey 1 md5 7 0822", "ntp authentication-\u212aey 1 md5 7 <removed>"),
        # A secret deep inside a long configuration, after hundreds of lines that hold none.
        (
            "".join(f"interface Ethernet{i}/1\n   mtu 9214\n!\n" for i in range(300)) + "tacacs-server key 7 0A1B\n",
            "".join(f"interface Ethernet{i}/1\n   mtu 9214\n!\n" for i in range(300))
            + "tacacs-server key 7 <removed>\n",
        ),
        # Several kinds in one text, each redacted by its own pattern.
        (
            "+snmp-server community c1 ro\n-ntp authentication-key 1 md5 7 k1\n radius-server key k2\n",
            "+snmp-server community <removed> ro\n-ntp authentication-key 1 md5 7 <removed>\n"
            " radius-server key <removed>\n",
        ),
    ],
)
def test_redact_text(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected

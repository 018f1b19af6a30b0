"""Every receiver kind against real local servers: the body each vendor expects, the signatures DingTalk and
Feishu check (verified by the capturing server), PagerDuty's trigger/acknowledge/resolve with one dedup_key,
retry classification, SMTP delivery — and no secret in the delivery log."""

from __future__ import annotations

import pytest

from fabric_ops.alerting import delivery, engine
from fabric_ops.alerting.ingest import raise_alert, resolve_alert
from fabric_ops.alerting.models import AlertGroup, DeliveryAttempt, Notification, Receiver

from .conftest import DINGTALK_SECRET, FEISHU_SECRET, pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"
LABELS = {"alertname": "LinkDown", "severity": "critical", "site": "sjc", "device": "leaf1", "interface": "Et1"}


@pytest.fixture
def secrets_env(monkeypatch) -> None:
    """Receiver secrets by name from the environment, exactly as production resolves them."""
    monkeypatch.setenv("FABRIC_OPS_CRED_PD_NET_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("FABRIC_OPS_CRED_DING_ACCESS_TOKEN", "ding-token-xyz")
    monkeypatch.setenv("FABRIC_OPS_CRED_DING_SECRET", DINGTALK_SECRET)
    monkeypatch.setenv("FABRIC_OPS_CRED_WECOM_KEY", "wecom-key-693a91f6")
    monkeypatch.setenv("FABRIC_OPS_CRED_FEISHU_TOKEN", "feishu-hook-0f9a")
    monkeypatch.setenv("FABRIC_OPS_CRED_FEISHU_SECRET", FEISHU_SECRET)
    monkeypatch.setenv("FABRIC_OPS_CRED_SLACK_URL", "")  # replaced per test when used


def _route_to(root_route, receiver: Receiver) -> None:
    root_route.receiver = receiver
    root_route.save()


def _fire(manual_clock, labels=LABELS) -> None:
    raise_alert(labels, {"summary": "leaf1 Et1 went oper-down"})
    manual_clock.advance(30)
    pump(manual_clock)


def _no_secret_in_log(*values: str) -> None:
    text = " ".join(DeliveryAttempt.objects.values_list("detail", flat=True))
    text += " ".join(Notification.objects.values_list("last_error", flat=True))
    text += " ".join(str(p) for p in Notification.objects.values_list("payload", flat=True))
    for value in values:
        assert value not in text


def test_pagerduty_trigger_acknowledge_resolve(root_route, http_capture, outbox, manual_clock, secrets_env) -> None:
    pd = Receiver.objects.create(
        name="pd", kind="pagerduty", url=f"{http_capture.url}/v2/enqueue", secret_name="pd-net"
    )
    _route_to(root_route, pd)
    http_capture.script("/v2/enqueue", (202, {"status": "success", "message": "Event processed", "dedup_key": "x"}))
    _fire(manual_clock)
    trigger = http_capture.requests[-1].body
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "leaf1"
    assert trigger["payload"]["summary"].startswith("[FIRING:1] LinkDown")
    assert [link["text"] for link in trigger["links"]] == ["Acknowledge", "Resolve"]
    engine.acknowledge(AlertGroup.objects.get().pk, "alice")
    pump(manual_clock)
    ack = http_capture.requests[-1].body
    assert ack["event_action"] == "acknowledge" and "payload" not in ack
    resolve_alert(LABELS)
    manual_clock.advance(300)
    pump(manual_clock)
    resolved = http_capture.requests[-1].body
    assert resolved["event_action"] == "resolve"
    assert trigger["dedup_key"] == ack["dedup_key"] == resolved["dedup_key"]
    assert len(http_capture.requests) == 3
    _no_secret_in_log(ROUTING_KEY)


@pytest.mark.parametrize(("status", "expected", "requests"), [(429, "sent", 2), (502, "sent", 2), (400, "failed", 1)])
def test_pagerduty_retries_429_and_5xx_never_400(
    status, expected, requests, root_route, http_capture, outbox, manual_clock, secrets_env
) -> None:
    pd = Receiver.objects.create(name="pd", kind="pagerduty", url=f"{http_capture.url}/v2/enqueue",
                                 secret_name="pd-net", backoff_s=2)  # fmt: skip
    _route_to(root_route, pd)
    http_capture.script("/v2/enqueue", (status, {"status": "invalid event", "message": "Event object is invalid"}))
    _fire(manual_clock)
    manual_clock.advance(2)
    pump(manual_clock)
    notification = Notification.objects.get()
    assert notification.status == expected
    assert len(http_capture.requests) == requests
    assert notification.log.first().status_code == status


def test_slack_incoming_webhook_url_is_a_secret(root_route, http_capture, outbox, manual_clock, monkeypatch) -> None:
    secret_url = f"{http_capture.url}/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("FABRIC_OPS_CRED_SLACK_URL", secret_url)
    slack = Receiver.objects.create(name="slack", kind="slack", secret_name="slack", options={"channel": "#netops"})
    _route_to(root_route, slack)
    http_capture.script("/services/T000/B000/XXXXSECRET", (404, b"no_service"))
    _fire(manual_clock)
    body = http_capture.requests[-1].body
    assert body["text"].startswith("[FIRING:1] LinkDown") and body["channel"] == "#netops"
    assert "Acknowledge: http://127.0.0.1:8000/alerting/act/" in body["attachments"][0]["text"]
    assert Notification.objects.get().status == "failed", "404 no_service is not retried"
    _no_secret_in_log("XXXXSECRET")


def test_dingtalk_signed_request(root_route, http_capture, outbox, manual_clock, secrets_env) -> None:
    ding = Receiver.objects.create(name="ding", kind="dingtalk", url=f"{http_capture.url}/dingtalk/robot/send",
                                   secret_name="ding", options={"at_mobiles": ["13800000000"]})  # fmt: skip
    _route_to(root_route, ding)
    _fire(manual_clock)
    request = http_capture.requests[-1]
    assert request.query["access_token"] == "ding-token-xyz"
    assert request.signature_ok is True, "HmacSHA256(secret, timestamp\\nsecret), base64, urlencoded"
    assert request.body["msgtype"] == "markdown" and request.body["at"]["atMobiles"] == ["13800000000"]
    assert "LinkDown" in request.body["markdown"]["title"]
    assert Notification.objects.get().status == "sent"
    _no_secret_in_log("ding-token-xyz", DINGTALK_SECRET)


def test_dingtalk_error_codes(root_route, http_capture, outbox, manual_clock, secrets_env) -> None:
    ding = Receiver.objects.create(name="ding", kind="dingtalk", url=f"{http_capture.url}/dingtalk/robot/send",
                                   secret_name="ding", backoff_s=1)  # fmt: skip
    _route_to(root_route, ding)
    http_capture.script(
        "/dingtalk/robot/send",
        (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        (200, {"errcode": 310000, "errmsg": "sign not match"}),
    )
    _fire(manual_clock)
    manual_clock.advance(1)
    pump(manual_clock)
    assert list(Notification.objects.get().log.values_list("outcome", flat=True)) == ["retry", "fatal"]
    assert Notification.objects.get().status == "failed"
    assert "310000" in Notification.objects.get().last_error


def test_wecom_group_robot(root_route, http_capture, outbox, manual_clock, secrets_env) -> None:
    wecom = Receiver.objects.create(name="wecom", kind="wecom", url=f"{http_capture.url}/cgi-bin/webhook/send",
                                    secret_name="wecom")  # fmt: skip
    _route_to(root_route, wecom)
    _fire(manual_clock)
    request = http_capture.requests[-1]
    assert request.query == {"key": "wecom-key-693a91f6"}
    assert request.body["msgtype"] == "markdown" and "leaf1 Et1 went oper-down" in request.body["markdown"]["content"]
    _no_secret_in_log("wecom-key-693a91f6")


def test_feishu_signed_bot(root_route, http_capture, outbox, manual_clock, secrets_env) -> None:
    url = f"{http_capture.url}/feishu/open-apis/bot/v2/hook/"
    feishu = Receiver.objects.create(name="feishu", kind="feishu", url=url, secret_name="feishu")
    _route_to(root_route, feishu)
    http_capture.script(
        "/feishu/open-apis/bot/v2/hook/feishu-hook-0f9a", (200, {"code": 19021, "msg": "sign match fail"})
    )
    _fire(manual_clock)
    request = http_capture.requests[-1]
    assert request.path == "/feishu/open-apis/bot/v2/hook/feishu-hook-0f9a"
    assert request.signature_ok is True, "base64(HMAC-SHA256(key=timestamp\\nsecret, msg=''))"
    assert request.body["msg_type"] == "text" and "LinkDown" in request.body["content"]["text"]
    notification = Notification.objects.get()
    assert notification.status == "failed" and "19021" in notification.last_error
    _no_secret_in_log("feishu-hook-0f9a", FEISHU_SECRET)


def test_email_over_smtp(root_route, smtp_server, outbox, manual_clock) -> None:
    host, port, handler = smtp_server
    mail = Receiver.objects.create(name="mail", kind="email", url=f"{host}:{port}",
                                   options={"from": "fabric-ops@example.net", "to": ["noc@example.net"]})  # fmt: skip
    _route_to(root_route, mail)
    _fire(manual_clock)
    assert len(handler.messages) == 1
    message = handler.messages[0]
    assert message["to"] == ["noc@example.net"] and message["from"] == "fabric-ops@example.net"
    assert "Subject: [FIRING:1] LinkDown" in message["data"] and "leaf1 Et1 went oper-down" in message["data"]
    assert Notification.objects.get().status == "sent"


def test_email_refused_recipient_is_fatal(root_route, smtp_server, outbox, manual_clock) -> None:
    host, port, handler = smtp_server
    options = {"from": "fabric-ops@example.net", "to": ["bounce@example.net"]}
    mail = Receiver.objects.create(name="mail", kind="email", url=f"{host}:{port}", options=options)
    _route_to(root_route, mail)
    _fire(manual_clock)
    notification = Notification.objects.get()
    assert notification.status == "failed" and notification.log.get().status_code == 550
    assert handler.messages == []


def test_unreachable_receiver_is_retried(root_route, outbox, manual_clock) -> None:
    dead = Receiver.objects.create(name="dead", kind="webhook", url="http://127.21.0.9:9/none", max_attempts=2,
                                   backoff_s=1, timeout_s=2)  # fmt: skip
    _route_to(root_route, dead)
    _fire(manual_clock)
    manual_clock.advance(1)
    pump(manual_clock)
    notification = Notification.objects.get()
    assert notification.status == "gave-up" and list(notification.log.values_list("outcome", flat=True)) == [
        "retry",
        "retry",
    ]


def test_missing_secret_is_a_clear_failure(root_route, outbox, manual_clock, http_capture) -> None:
    pd = Receiver.objects.create(name="pd", kind="pagerduty", url=f"{http_capture.url}/v2/enqueue", secret_name="nope")
    _route_to(root_route, pd)
    _fire(manual_clock)
    notification = Notification.objects.get()
    assert notification.status == "failed" and "FABRIC_OPS_CRED_NOPE_ROUTING_KEY" in notification.last_error
    assert http_capture.requests == []
    assert delivery.attempt(notification.pk).status == "failed"

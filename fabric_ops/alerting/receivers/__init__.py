"""One module per receiver kind; :func:`for_receiver` picks the implementation."""

from __future__ import annotations

from fabric_ops.errors import ConfigurationError

from ..models import Receiver
from .base import FATAL, RETRY, SENT, BaseReceiver, Result
from .dingtalk import DingTalkReceiver
from .email import EmailReceiver
from .feishu import FeishuReceiver
from .pagerduty import PagerDutyReceiver
from .slack import SlackReceiver
from .webhook import WebhookReceiver
from .wecom import WeComReceiver

KINDS: dict[str, type[BaseReceiver]] = {
    cls.kind: cls
    for cls in (
        WebhookReceiver, SlackReceiver, PagerDutyReceiver, EmailReceiver, DingTalkReceiver, WeComReceiver,
        FeishuReceiver,
    )
}  # fmt: skip

__all__ = ["FATAL", "KINDS", "RETRY", "SENT", "BaseReceiver", "Result", "for_receiver"]


def for_receiver(receiver: Receiver) -> BaseReceiver:
    try:
        return KINDS[receiver.kind](receiver)
    except KeyError:
        raise ConfigurationError(f"receiver {receiver.name}: unknown kind {receiver.kind!r}") from None

"""Email over SMTP (smtplib). ``Receiver.url`` is ``host:port``; options: ``from``, ``to`` (list), ``starttls``,
``ssl``. A login, if any, is the secret-store entry ``secret_name`` with keys ``username``/``password`` (the
same shape as device credentials). SMTP 4xx replies and connection faults are retried; 5xx are fatal.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from fabric_ops.errors import ConfigurationError

from .. import payload as text
from .base import FATAL, RETRY, SENT, BaseReceiver, Result


class EmailReceiver(BaseReceiver):
    kind = "email"

    def message(self, payload: dict[str, Any]) -> EmailMessage:
        options = self.receiver.options
        recipients = options.get("to") or []
        if not recipients or not options.get("from"):
            raise ConfigurationError(f"receiver {self.receiver.name}: options need 'from' and a 'to' list")
        msg = EmailMessage()
        msg["Subject"] = text.title(payload)
        msg["From"] = options["from"]
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="fabric-ops")
        msg["X-FabricOps-Group"] = str(payload["groupKey"])
        msg.set_content(text.text(payload))
        return msg

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        host, _, port = (self.receiver.url or "127.0.0.1:25").rpartition(":")
        options = self.receiver.options
        msg = self.message(payload)
        username = self.secret("username", required=False) if self.receiver.secret_name else ""
        password = self.secret("password", required=False) if username else ""
        try:
            factory = smtplib.SMTP_SSL if options.get("ssl") else smtplib.SMTP
            kwargs: dict[str, Any] = {"timeout": self.receiver.timeout_s}
            if options.get("ssl"):
                kwargs["context"] = ssl.create_default_context()
            with factory(host or "127.0.0.1", int(port or 25), **kwargs) as smtp:
                if options.get("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                if username:
                    smtp.login(username, password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            outcome = RETRY if all(400 <= c < 500 for c in codes) else FATAL
            return self.done(Result(outcome, codes[0] if codes else None, f"recipients refused: {exc.recipients}"))
        except smtplib.SMTPResponseException as exc:
            outcome = RETRY if 400 <= exc.smtp_code < 500 else FATAL
            return self.done(Result(outcome, exc.smtp_code, f"SMTP {exc.smtp_code} {exc.smtp_error!r}"))
        except (smtplib.SMTPException, OSError) as exc:
            return self.done(Result(RETRY, None, f"{type(exc).__name__}: {exc}"))
        detail = f"accepted; refused: {refused}" if refused else "accepted"
        return self.done(Result(SENT, 250, detail))

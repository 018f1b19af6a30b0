"""Open NAPALM drivers for devices of the source of truth; the one door to the switches.

Library errors are translated here, where they enter, into the DeviceError
family, each naming the device, so the rest of the platform handles one kind
of failure and the operator always sees which switch said what.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from napalm.base import NetworkDriver
from napalm.base.exceptions import (
    CommandErrorException,
    CommitError,
    ConnectAuthError,
    ConnectionException,
    MergeConfigException,
    ReplaceConfigException,
    SessionLockedException,
)
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException
from pyeapi.eapilib import CommandError as EapiCommandError
from pyeapi.eapilib import ConnectionError as EapiConnectionError

from fabric_ops.errors import DeviceError
from fabric_ops.topology.models import Device

from .credentials import resolve

logger = logging.getLogger(__name__)

# Seconds to wait for a switch before calling it unreachable; long enough for a busy control plane.
CONNECT_TIMEOUT = int(os.environ.get("FABRIC_OPS_DEVICE_TIMEOUT", "30"))


class DeviceUnreachable(DeviceError):
    """No answer, refused, or the management session failed."""


class DeviceAuthError(DeviceError):
    """The switch refused the credential."""


class ConfigRejected(DeviceError):
    """The switch rejected configuration lines; ``device_text`` is its own error message."""

    def __init__(self, device: str, device_text: str):
        self.device_text = device_text
        super().__init__(device, f"configuration rejected: {device_text}")


class CommitFailed(DeviceError):
    """A commit, confirm or rollback failed on the switch."""


def driver_class(platform: str) -> type[NetworkDriver]:
    """NAPALM driver class for a platform: NAPALM's own where it has one, ours otherwise."""
    if platform == "huawei_vrp":
        from .drivers.huawei_vrp import HuaweiVRPDriver

        return HuaweiVRPDriver
    if platform == "eos":
        from .drivers.eos import FabricOpsEOSDriver  # NAPALM's eos driver, fewer round trips (see that module)

        return FabricOpsEOSDriver
    raise DeviceError(platform, f"no driver for platform {platform!r}")


def optional_args(device: Device) -> dict:
    if device.platform == "eos":
        from .drivers.eos import KeepAliveHttpsEapiConnection

        # NAPALM accepts an EapiConnection subclass as the transport: HTTPS, one connection per driver session
        return {"transport": KeepAliveHttpsEapiConnection, "port": device.eapi_port}
    return {"port": device.ssh_port}


@contextmanager
def translate_errors(hostname: str) -> Iterator[None]:
    """Turn NAPALM/transport exceptions into the DeviceError family, naming the device."""
    try:
        yield
    except DeviceError:
        raise
    except (ConnectAuthError, NetmikoAuthenticationException) as exc:
        raise DeviceAuthError(hostname, f"authentication failed: {exc}") from exc
    except EapiConnectionError as exc:
        # pyeapi reports HTTP 401 as a connection error; an operator needs to know it was the credential.
        if "unauthorized" in str(exc).lower():
            raise DeviceAuthError(hostname, f"authentication failed: {exc}") from exc
        raise DeviceUnreachable(hostname, f"unreachable: {exc}") from exc
    except (MergeConfigException, ReplaceConfigException) as exc:
        raise ConfigRejected(hostname, str(exc).strip()) from exc
    except (CommitError, CommandErrorException, EapiCommandError) as exc:
        raise CommitFailed(hostname, str(exc).strip()) from exc
    except SessionLockedException as exc:
        raise CommitFailed(hostname, f"configuration session locked by someone else: {exc}") from exc
    except (ConnectionException, NetmikoTimeoutException, ConnectionError, TimeoutError, OSError, EOFError) as exc:
        raise DeviceUnreachable(hostname, f"unreachable: {exc}") from exc


@contextmanager
def open_driver(device: Device, timeout: int | None = None) -> Iterator[NetworkDriver]:
    """An opened NAPALM driver for ``device``, closed on exit whatever happens."""
    if not device.mgmt_address:
        raise DeviceUnreachable(device.hostname, "has no management address in the source of truth")
    credential = resolve(device.credential)
    driver = driver_class(device.platform)(
        hostname=device.mgmt_address,
        username=credential.username,
        password=credential.password,
        timeout=timeout or CONNECT_TIMEOUT,
        optional_args=optional_args(device),
    )
    with translate_errors(device.hostname):
        driver.open()
    try:
        with translate_errors(device.hostname):
            yield driver
    finally:
        try:
            driver.close()
        except Exception as exc:
            logger.warning("%s: close failed: %s", device.hostname, exc)

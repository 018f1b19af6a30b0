"""One exception family for the whole platform.

Messages are written for the operator: they name the file, line, field or
device at fault, so the error can be acted on without reading a traceback.
"""

from __future__ import annotations


class FabricOpsError(Exception):
    """Root of every error FabricOps raises on purpose."""


class ConfigurationError(FabricOpsError):
    """A setting or a secret is missing or malformed."""


class InventoryError(FabricOpsError):
    """An inventory file is invalid; carries every problem found, each with file, line and key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class GeneratorError(FabricOpsError):
    """Fabric generator parameters cannot produce a valid Clos fabric."""


class TopologyError(FabricOpsError):
    """A graph query names something that is not in the fabric."""


class DeviceError(FabricOpsError):
    """A switch refused, failed or could not be reached; the message names the device."""

    def __init__(self, device: str, message: str):
        self.device = device
        super().__init__(f"{device}: {message}")


class LabError(FabricOpsError):
    """The virtual lab rejected a request (unknown target, bad fault parameter, not running)."""


class LabUnavailable(LabError):
    """No lab is running, or it does not answer on its control channel (the API answers 503)."""

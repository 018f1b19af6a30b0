"""gNMI (gRPC) server of the virtual lab: Capabilities, Get and Subscribe on every emulated switch.

Use::

    server = serve(switches, credential)            # or tls=(cert_pem, key_pem)
    ...
    server.snapshot()                               # sample ticks, lateness, updates sent
    server.stop()

Paths and models are listed in docs/telemetry-paths.md.
"""

from ..tls import self_signed_certificate
from .paths import MODELS, GnmiPathError, transceiver_name
from .server import LabServer, serve

__all__ = ["MODELS", "GnmiPathError", "LabServer", "self_signed_certificate", "serve", "transceiver_name"]

"""Render a device's full intended configuration from ``templates/<platform>/device.j2``.

Templates run in a sandbox with StrictUndefined: a missing variable is an
error naming the template, line and variable, never an empty string pushed to
a switch.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path

import jinja2
from django.conf import settings
from jinja2.sandbox import SandboxedEnvironment

from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import Device

from .context import device_context, device_contexts


class TemplateRenderError(FabricOpsError):
    """A template could not render; names the template file, line and cause."""

    def __init__(self, template: str, line: int | None, message: str):
        self.template = template
        self.line = line
        super().__init__(f"{template}:{line if line is not None else '?'}: {message}")


def environment(templates_dir: Path | None = None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir or settings.NETWORK_TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # network configuration is not HTML
    )


@functools.lru_cache(maxsize=16)
def _shared_environment(templates_dir: str) -> SandboxedEnvironment:
    """One environment per templates folder, so each template is compiled once, not once per device.

    Jinja re-checks the file's modification time on every load (auto_reload), so an edited template is still
    picked up; compiling device.j2 anew for every device was most of the cost of rendering a fabric.
    """
    return environment(Path(templates_dir))


def _template_line(exc: BaseException, template_name: str) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's own file and line; find the last one."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(template_name):
            line = frame.lineno
    return line


def render_template(template_name: str, context: dict, templates_dir: Path | None = None) -> str:
    """Render one template, translating every Jinja failure into TemplateRenderError."""
    env = _shared_environment(str(templates_dir or settings.NETWORK_TEMPLATES_DIR))
    try:
        template = env.get_template(template_name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateRenderError(template_name, None, f"template not found ({exc.name})") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(exc.name or template_name, exc.lineno, f"syntax error: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(template_name, _template_line(exc, template_name), exc.message or str(exc)) from exc
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(template_name, _template_line(exc, template_name), str(exc)) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        line = _template_line(sys.exc_info()[1], template_name)
        raise TemplateRenderError(template_name, line, f"{type(exc).__name__}: {exc}") from exc


def render_device(device: Device, templates_dir: Path | None = None) -> str:
    """The complete intended configuration of ``device`` (base + underlay + RoCE) in its platform's syntax."""
    return render_template(f"{device.platform}/device.j2", device_context(device), templates_dir)


def render_devices(
    devices: Iterable[Device], templates_dir: Path | None = None
) -> Iterator[tuple[Device, str | FabricOpsError]]:
    """``render_device`` for many devices: (device, configuration text or the error that stopped it), in order.

    The source of truth is read with a few bulk queries per batch of devices (``context.device_contexts``),
    not several per device; each device is rendered only when the caller asks for the next one, so a push job
    can hand the first device to its pool while the rest are still rendering. The text is identical to
    ``render_device``'s.
    """
    for device, context in device_contexts(devices):
        if isinstance(context, FabricOpsError):
            yield device, context
            continue
        try:
            yield device, render_template(f"{device.platform}/device.j2", context, templates_dir)
        except TemplateRenderError as exc:
            yield device, exc

"""YAML inventory: the fabric described in version-controlled files, imported into and exported from the database.

Public API (see docs/inventory.md)::

    validate(path) -> list[Problem]
    import_inventory(path, *, dry_run=False) -> ChangeReport   # raises InventoryError, writes nothing, if invalid
    export_inventory(fabric_names=None) -> str
"""

from __future__ import annotations

import logging
from pathlib import Path

from fabric_ops.errors import InventoryError

from .checks import check_spec
from .exporter import export_inventory
from .importer import ChangeReport, apply_spec
from .loader import compose_file
from .problems import Problem, Problems
from .schema import read_spec
from .spec import Spec

__all__ = ["ChangeReport", "Problem", "build_spec", "export_inventory", "import_inventory", "validate"]

logger = logging.getLogger(__name__)


def build_spec(path: str | Path) -> tuple[Spec, list[Problem]]:
    """Read, expand (``generate:`` blocks) and check a file; the spec is only usable when there are no problems."""
    name = str(path)
    problems = Problems(name)
    tree = compose_file(path, problems)
    spec = Spec(file=name)
    if tree is None and problems:  # unreadable or not YAML: nothing more to say
        return spec, problems.sorted()
    reader = read_spec(tree, spec, problems)
    if reader.generate_blocks:
        from .generate import expand_generate_blocks  # the generators are only needed by files that use them

        expand_generate_blocks(spec, reader.generate_blocks, problems)
    check_spec(spec, reader.link_meta, problems)
    return spec, problems.sorted()


def validate(path: str | Path) -> list[Problem]:
    """Every problem in ``path`` (empty when it would import cleanly); reads the database, never writes it."""
    return build_spec(path)[1]


def import_inventory(path: str | Path, *, dry_run: bool = False) -> ChangeReport:
    """Make the database match ``path`` for the fabrics it names; all-or-nothing.

    Raises InventoryError listing every problem (``file:line: key: message``)
    before anything is written.
    """
    spec, problems = build_spec(path)
    if problems:
        logger.warning("inventory %s: %d problem(s), nothing written", path, len(problems))
        raise InventoryError(problems)
    return apply_spec(spec, dry_run=dry_run)

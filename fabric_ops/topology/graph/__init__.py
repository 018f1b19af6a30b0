"""Graph analysis of the fabric: paths, capacity and blast radius.

``FabricGraph.load()`` reads the topology once into compact arrays (and a lazily
built networkx view) and answers the questions guardrails ask on every action
without touching the database again.
"""

from .cache import invalidate
from .core import FabricGraph
from .results import BlastRadius, HostImpact, LeafImpact, PathSummary

__all__ = ["BlastRadius", "FabricGraph", "HostImpact", "LeafImpact", "PathSummary", "invalidate"]

"""Fabric generators: parameters -> an in-memory plan -> the database, plus the bill of materials.

    plan = plan_fabric(FabricParams(name="c1", site="sjc1", gpus=1024, radix=64))
    fabric = persist_plan(plan)
    print(bill_of_materials(fabric).render())

See docs/generators.md for the sizing rules, address and ASN plans and the DCI design.
"""

from .bom import BillOfMaterials, SwitchLine, bill_of_materials
from .catalogue import OPTICS, OpticSpec, interface_name, switch_power_w
from .clos import ClosSizes, clos_sizes, plan_fabric
from .multisite import plan_multisite, span_figures
from .params import DciParams, FabricParams, resolve_params
from .persist import delete_fabric, persist_plan, persist_plans
from .plan import (
    ExtRef,
    FabricPlan,
    PlanChannel,
    PlanDevice,
    PlanHost,
    PlanInterface,
    PlanLink,
    PlanNic,
    PlanPod,
    PlanSite,
    PlanSpan,
)

__all__ = [
    "OPTICS",
    "BillOfMaterials",
    "ClosSizes",
    "DciParams",
    "ExtRef",
    "FabricParams",
    "FabricPlan",
    "OpticSpec",
    "PlanChannel",
    "PlanDevice",
    "PlanHost",
    "PlanInterface",
    "PlanLink",
    "PlanNic",
    "PlanPod",
    "PlanSite",
    "PlanSpan",
    "SwitchLine",
    "bill_of_materials",
    "clos_sizes",
    "delete_fabric",
    "interface_name",
    "persist_plan",
    "persist_plans",
    "plan_fabric",
    "plan_multisite",
    "resolve_params",
    "span_figures",
    "switch_power_w",
]

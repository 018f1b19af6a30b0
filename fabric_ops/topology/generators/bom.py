"""Bill of materials: what to buy and roughly how much power it draws.

Works on a plan (before anything is written) or on a fabric in the database (``fabric bom NAME``), so the
two can be compared. Optics are counted per cable end: both ends of every switch link, and both the leaf
port and the NIC of every host link. Switch power is typical, without optics, by capacity class
(catalogue.switch_power_w); optics power is the catalogue's typical figure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from fabric_ops.errors import GeneratorError

from ..models import Device, Fabric, GpuHost, GpuNic, Interface, Link, OpticalChannel, OpticalSpan
from .catalogue import OPTICS, default_optic, switch_power_w
from .plan import FabricPlan

__all__ = ["BillOfMaterials", "SwitchLine", "bill_of_materials"]


@dataclass(frozen=True)
class SwitchLine:
    role: str
    platform: str
    model: str
    count: int
    watts_each: float

    @property
    def watts(self) -> float:
        return self.count * self.watts_each


@dataclass
class BillOfMaterials:
    fabrics: list[str]
    gpus: int = 0
    hosts: int = 0
    switches: list[SwitchLine] = field(default_factory=list)
    links: Counter = field(default_factory=Counter)  # kind -> count; "host" = GPU NIC attachments
    optics: Counter = field(default_factory=Counter)  # catalogue name -> count
    spans: int = 0
    span_km: float = 0.0
    amplifiers: int = 0
    channels: int = 0

    @property
    def switch_count(self) -> int:
        return sum(s.count for s in self.switches)

    def switches_by_role(self) -> dict[str, int]:
        out: Counter = Counter()
        for s in self.switches:
            out[s.role] += s.count
        return dict(out)

    @property
    def switch_power_w(self) -> float:
        return sum(s.watts for s in self.switches)

    @property
    def optics_power_w(self) -> float:
        return sum(OPTICS[name].typical_power_w * n for name, n in self.optics.items())

    @property
    def total_power_w(self) -> float:
        return self.switch_power_w + self.optics_power_w

    def merge(self, other: BillOfMaterials) -> BillOfMaterials:
        merged: dict[tuple[str, str, str, float], int] = defaultdict(int)
        for s in [*self.switches, *other.switches]:
            merged[(s.role, s.platform, s.model, s.watts_each)] += s.count
        return BillOfMaterials(
            fabrics=self.fabrics + other.fabrics,
            gpus=self.gpus + other.gpus,
            hosts=self.hosts + other.hosts,
            switches=[SwitchLine(r, p, m, n, w) for (r, p, m, w), n in merged.items()],
            links=self.links + other.links,
            optics=self.optics + other.optics,
            spans=self.spans + other.spans,
            span_km=self.span_km + other.span_km,
            amplifiers=self.amplifiers + other.amplifiers,
            channels=self.channels + other.channels,
        )

    def as_dict(self) -> dict:
        return {
            "fabrics": self.fabrics,
            "gpus": self.gpus,
            "hosts": self.hosts,
            "switches": [s.__dict__ | {"watts": s.watts} for s in self.switches],
            "switches_by_role": self.switches_by_role(),
            "links": dict(self.links),
            "optics": dict(self.optics),
            "spans": self.spans,
            "span_km": self.span_km,
            "amplifiers": self.amplifiers,
            "channels": self.channels,
            "switch_power_w": self.switch_power_w,
            "optics_power_w": self.optics_power_w,
            "total_power_w": self.total_power_w,
        }

    def render(self) -> str:
        """A fixed-width table for the terminal."""
        out = [f"Bill of materials: {', '.join(self.fabrics)}"]
        if self.gpus:
            out.append(f"  {self.gpus:,} GPUs on {self.hosts:,} hosts")
        out.append(f"{'Switches':<52}{'count':>10}{'W each':>10}{'kW total':>11}")
        order = {"leaf": 0, "spine": 1, "superspine": 2, "border-leaf": 3, "dci": 4}
        for s in sorted(self.switches, key=lambda s: (order.get(s.role, 9), s.platform, s.model)):
            label = f"  {s.role:<11} {s.platform:<11} {s.model}"
            out.append(f"{label[:52]:<52}{s.count:>10,}{s.watts_each:>10,.0f}{s.watts / 1000:>11,.1f}")
        out.append(f"{'  total':<52}{self.switch_count:>10,}{'':>10}{self.switch_power_w / 1000:>11,.1f}")
        out.append(f"{'Links':<52}{'count':>10}")
        for kind in sorted(self.links):
            out.append(f"{'  ' + kind:<52}{self.links[kind]:>10,}")
        out.append(f"{'Optics (every cable end, NICs included)':<52}{'count':>10}{'W each':>10}{'kW total':>11}")
        for name in sorted(self.optics):
            spec = OPTICS[name]
            label = f"  {name} {spec.form_factor}{' coherent' if spec.coherent else ''}"
            count = self.optics[name]
            kw = count * spec.typical_power_w / 1000
            out.append(f"{label:<52}{count:>10,}{spec.typical_power_w:>10,.1f}{kw:>11,.1f}")
        out.append(f"{'  total':<52}{sum(self.optics.values()):>10,}{'':>10}{self.optics_power_w / 1000:>11,.1f}")
        if self.spans:
            out.append(
                f"Optical line: {self.spans} spans, {self.span_km:,.0f} km, {self.amplifiers} inline amplifiers, "
                f"{self.channels} wavelengths"
            )
        out.append(
            f"Power (typical): switches {self.switch_power_w / 1000:,.1f} kW + optics {self.optics_power_w / 1000:,.1f}"
            f" kW = {self.total_power_w / 1000:,.1f} kW"
        )
        return "\n".join(out)


def _from_plan(plan: FabricPlan) -> BillOfMaterials:
    bom = BillOfMaterials(fabrics=[plan.name], hosts=len(plan.hosts), gpus=sum(h.gpus for h in plan.hosts))
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for d, dev in enumerate(plan.devices):
        first, last = plan.device_ports[d]
        capacity = sum(plan.interfaces[i].speed_gbps for i in range(first, last))
        groups[(dev.role, dev.platform, dev.model)].append(capacity)
    for (role, platform, model), caps in groups.items():
        bom.switches.append(SwitchLine(role, platform, model, len(caps), switch_power_w(sum(caps) / len(caps))))
    bom.links = Counter(link.kind for link in plan.links)
    if plan.nics:
        bom.links["host"] = len(plan.nics)
    bom.optics = Counter(i.transceiver for i in plan.interfaces if i.transceiver)
    chosen = {int(k): v for k, v in plan.parameters.get("transceivers", {}).items()}
    for nic in plan.nics:  # the NIC end of the host cable
        bom.optics[chosen.get(nic.speed_gbps) or default_optic(nic.speed_gbps)] += 1
    bom.spans = len(plan.spans)
    bom.span_km = sum(s.length_km for s in plan.spans)
    bom.amplifiers = sum(s.amplifier_count for s in plan.spans)
    bom.channels = len(plan.channels)
    return bom


def _from_fabric(fabric: Fabric) -> BillOfMaterials:
    hosts = GpuHost.objects.filter(fabric=fabric).aggregate(n=Count("id"), gpus=Sum("gpus"))
    bom = BillOfMaterials(fabrics=[fabric.name], hosts=hosts["n"] or 0, gpus=hosts["gpus"] or 0)
    per_group = (
        Interface.objects.filter(device__fabric=fabric)
        .values("device__role", "device__platform", "device__model")
        .annotate(capacity=Sum("speed_gbps"), devices=Count("device", distinct=True))
    )
    for row in per_group:
        bom.switches.append(
            SwitchLine(row["device__role"], row["device__platform"], row["device__model"], row["devices"],
                       switch_power_w(row["capacity"] / row["devices"]))
        )  # fmt: skip
    portless = Device.objects.filter(fabric=fabric, interfaces__isnull=True).values("role", "platform", "model")
    for row in portless.annotate(n=Count("id")):
        bom.switches.append(SwitchLine(row["role"], row["platform"], row["model"], row["n"], 0.0))
    # A link belongs to the fabric of its b side (the upper tier; the DCI router for a DCI uplink).
    links = Link.objects.filter(b_interface__device__fabric=fabric).values("kind").annotate(n=Count("id"))
    bom.links = Counter({row["kind"]: row["n"] for row in links})
    nics = GpuNic.objects.filter(host__fabric=fabric).values("speed_gbps").annotate(n=Count("id"))
    if nics:
        bom.links["host"] = sum(row["n"] for row in nics)
    optics = (
        Interface.objects.filter(device__fabric=fabric, transceiver__isnull=False)
        .values("transceiver__name")
        .annotate(n=Count("id"))
    )
    bom.optics = Counter({row["transceiver__name"]: row["n"] for row in optics if row["transceiver__name"] in OPTICS})
    chosen = {int(k): v for k, v in (fabric.parameters or {}).get("transceivers", {}).items()}
    for row in nics:
        bom.optics[chosen.get(row["speed_gbps"]) or default_optic(row["speed_gbps"])] += row["n"]
    channels = OpticalChannel.objects.filter(link__b_interface__device__fabric=fabric)
    spans = OpticalSpan.objects.filter(channels__in=channels).distinct()
    span_figures = spans.aggregate(n=Count("id"), km=Sum("length_km"), amps=Sum("amplifier_count"))
    bom.spans = span_figures["n"] or 0
    bom.span_km = span_figures["km"] or 0.0
    bom.amplifiers = span_figures["amps"] or 0
    bom.channels = channels.count()
    return bom


def bill_of_materials(plan_or_fabric: FabricPlan | Fabric | str | list) -> BillOfMaterials:
    """BOM of a plan, a Fabric row, a fabric name, or a list of those (summed, e.g. a multi-site build)."""
    if isinstance(plan_or_fabric, list | tuple):
        if not plan_or_fabric:
            raise GeneratorError("bill_of_materials: nothing to count")
        boms = [bill_of_materials(x) for x in plan_or_fabric]
        total = boms[0]
        for b in boms[1:]:
            total = total.merge(b)
        return total
    if isinstance(plan_or_fabric, FabricPlan):
        return _from_plan(plan_or_fabric)
    if isinstance(plan_or_fabric, str):
        fabric = Fabric.objects.filter(name=plan_or_fabric).first()
        if fabric is None:
            raise GeneratorError(f"fabric {plan_or_fabric!r} does not exist")
        return _from_fabric(fabric)
    if isinstance(plan_or_fabric, Fabric):
        return _from_fabric(plan_or_fabric)
    raise GeneratorError(f"bill_of_materials: cannot count a {type(plan_or_fabric).__name__}")

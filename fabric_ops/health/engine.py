"""The detection engine: telemetry handoff entries in, raised and cleared findings out.

It keeps, per series, a short time-ordered history of samples (what the pure detectors look at) and the set of
active findings (for hysteresis and for clearing). Input is the collector's handoff format
(``fabric_ops.telemetry.handoff``): stream entries ``{"type": "state"|"sample"|"stream", "device", "ts", "data"}``
and, once a second, :meth:`scan` over the latest values (``<prefix>:latest:<device>`` hashes) for what the stream
does not carry (utilisation, optics power, silence). The handoff only forwards samples whose congestion/error
fields are non-zero, so a sample-driven finding clears when its series has been quiet for ``quiet_clear_s``.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from fabric_ops.telemetry.handoff import field_ts

from .detectors import congestion as cg
from .detectors import device as dv
from .detectors import link as lk
from .detectors.base import NS, Finding, Sample, with_overrides
from .topology import TopologyIndex

logger = logging.getLogger(__name__)

SERIES_TAGS = ("interface", "queue", "priority", "channel", "lane")
SAMPLE_KINDS = {
    "queue": ("ecn-marking", "lossless-drops"),
    "pfc": ("pfc-pause", "pfc-storm"),
    "interface": ("crc-errors",),
    "optics": ("fec-uncorrectable", "pre-fec-ber"),
    "dci_channel": ("dci-degradation",),
}


def thresholds() -> tuple[cg.CongestionThresholds, lk.LinkThresholds, dv.DeviceThresholds]:
    """Defaults overridden by ``settings.FABRIC_OPS_HEALTH_THRESHOLDS`` ({"congestion": {...}, "link": ..., ...})."""
    conf = getattr(settings, "FABRIC_OPS_HEALTH_THRESHOLDS", {}) or {}
    return (
        with_overrides(cg.CongestionThresholds(), conf.get("congestion")),
        with_overrides(lk.LinkThresholds(), conf.get("link")),
        with_overrides(dv.DeviceThresholds(), conf.get("device")),
    )


@dataclass
class Result:
    """What one round found. ``raised`` and ``cleared`` lose the order between them; ``final`` keeps it.

    A round can raise and then clear the same key (a lagging stream delivers an old flap, and the scan that follows
    sees it has aged out), or clear and then raise it again. Whoever records the result must apply the last word
    per key, not "clears, then raises": :attr:`final` maps every key this round touched to True (active at the
    end of the round) or False (cleared at the end).
    """

    raised: list[Finding] = field(default_factory=list)  # new, or still active with fresher evidence
    cleared: list[tuple[str, str, str]] = field(default_factory=list)
    final: dict[tuple[str, str, str], bool] = field(default_factory=dict)

    def raise_(self, finding: Finding) -> None:
        self.raised.append(finding)
        self.final.pop(finding.key, None)  # re-insert: dict order is the order of last change
        self.final[finding.key] = True

    def clear(self, key: tuple[str, str, str]) -> None:
        self.cleared.append(key)
        self.final.pop(key, None)
        self.final[key] = False

    def extend(self, other: Result) -> None:
        """Append ``other`` as having happened after everything already in this result."""
        self.raised.extend(other.raised)
        self.cleared.extend(other.cleared)
        for key, up in other.final.items():
            self.final.pop(key, None)
            self.final[key] = up


class DetectionEngine:
    """Stateful wrapper around the pure detectors; one per detection process."""

    def __init__(self, index: TopologyIndex, *, history_s: float = 600.0, quiet_clear_s: float = 3.0,
                 lossless_queues: frozenset[str] = frozenset({"3"})) -> None:  # fmt: skip
        self.index = index
        self.cth, self.lth, self.dth = thresholds()
        self.history_s = history_s
        self.sample_history_s = 60.0
        self.quiet_clear_s = quiet_clear_s
        self.lossless_queues = lossless_queues
        self.series: dict[tuple, deque[Sample]] = defaultdict(deque)
        self.changes: dict[tuple[str, str], deque[lk.StateChange]] = defaultdict(deque)
        self.active: dict[tuple[str, str, str], Finding] = {}
        self.source: dict[tuple[str, str, str], tuple] = {}  # finding key -> series key (for quiet clearing)
        self.last_seen: dict[str, int] = {}  # device -> newest switch timestamp
        self.lane_seen: dict[tuple, int] = {}

    # --- state hand-over (a detection task that ends hands its memory to the next one) ------------------
    STATE_FIELDS = ("series", "changes", "active", "source", "last_seen", "lane_seen")

    # Histories rebuilt from the latest values within their windows: a checkpoint leaves them out (they were 10 MB
    # and 1.8 s of pickling every 10 s on the 48-switch benchmark). What is lost on a hand-over to another process is
    # small: an active hot-link or optic alarm keeps its hysteresis (active findings are kept, and an active one
    # needs one sample), a hot link still building up restarts its 30 s window, the in-loop Rx-power trend restarts
    # (health.optical_scan computes trends from InfluxDB anyway).
    LATEST_SERIES = ("interface-util", "optics-lane")

    def memory(self) -> dict[str, Any]:
        """What the engine remembers (stream-fed histories, state changes, active findings), picklable."""
        state = {name: getattr(self, name) for name in self.STATE_FIELDS}
        state["series"] = {k: v for k, v in self.series.items() if k[0] not in self.LATEST_SERIES}
        state["lane_seen"] = {}
        return state

    def load_memory(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`memory` of another engine (thresholds and topology stay this engine's own)."""
        self.series = defaultdict(deque, state["series"])
        self.changes = defaultdict(deque, state["changes"])
        for name in ("active", "source", "last_seen", "lane_seen"):
            setattr(self, name, dict(state[name]))

    # --- bookkeeping ---------------------------------------------------------------------------------
    def _set(self, result: Result, kind: str, key: tuple[str, str, str], finding: Finding | None, src=None) -> None:
        if finding is not None:
            self.active[finding.key] = finding
            if src is not None:
                self.source[finding.key] = src
            result.raise_(finding)
        elif key in self.active and key[0] == kind:
            del self.active[key]
            self.source.pop(key, None)
            result.clear(key)

    def _history(self, key: tuple, sample: Sample) -> deque[Sample]:
        hist = self.series[key]
        if hist and sample.ts <= hist[-1].ts:
            return hist  # duplicate or reordered: ignore
        hist.append(sample)
        # sample detectors look back at most their sustain windows (30 s); the optics trend needs its window
        keep = self.lth.rx_trend_window_s if key[0] == "optics-lane" else self.sample_history_s
        horizon = sample.ts - int(keep * NS)
        while hist and hist[0].ts < horizon:
            hist.popleft()
        return hist

    # --- stream entries ------------------------------------------------------------------------------
    def ingest(self, entry: Mapping[str, Any]) -> Result:
        """One handoff entry: {"type", "device", "ts", "data"}."""
        kind, device, ts, data = entry["type"], entry["device"], int(entry["ts"]), entry["data"]
        self.last_seen[device] = max(self.last_seen.get(device, 0), ts)
        if kind == "sample":
            tags = {"device": device, **data.get("tags", {})}
            return self.sample(Sample(data["measurement"], tags, data.get("fields", {}), ts))
        if kind == "state":
            tags = data.get("tags", {})
            change = lk.StateChange(device, tags.get("interface", ""), data["field"], data.get("old"),
                                    data.get("new"), ts, tags)  # fmt: skip
            return self.state(change)
        if kind == "stream":
            return self.stream(device, data, ts)
        return Result()

    def sample(self, s: Sample) -> Result:
        result = Result()
        skey = (s.measurement, s.device, tuple(sorted((k, v) for k, v in s.tags.items() if k in SERIES_TAGS)))
        hist = self._history(skey, s)
        samples = list(hist)
        m = s.measurement
        subject_port = s.tags.get("interface", "")
        if m == "queue":
            sub = f"{subject_port}/{s.tags.get('queue', '')}"
            key = ("ecn-marking", s.device, sub)
            self._set(result, "ecn-marking", key, cg.ecn_marking(samples, self.cth, key in self.active), skey)
            key = ("lossless-drops", s.device, sub)
            drops = cg.lossless_drops(samples, self.cth, self.lossless_queues, key in self.active)
            self._set(result, "lossless-drops", key, drops, skey)
        elif m == "pfc":
            sub = f"{subject_port}/{s.tags.get('priority', '')}"
            speed = self.index.port_speed.get((s.device, subject_port), 400)
            key = ("pfc-storm", s.device, sub)
            storm = cg.pfc_storm(samples, self.cth, speed, key in self.active)
            if storm is None and key in self.active:
                storm = self.active[key] if self._recent(samples) else None
            self._set(result, "pfc-storm", key, storm, skey)
            key = ("pfc-pause", s.device, sub)
            self._set(result, "pfc-pause", key, cg.pfc_pause(samples, self.cth, key in self.active), skey)
        elif m == "interface":
            key = ("crc-errors", s.device, subject_port)
            self._set(result, "crc-errors", key, lk.crc_errors(samples, self.lth, key in self.active), skey)
        elif m == "optics":
            for kind, fn in (("fec-uncorrectable", lk.fec_uncorrectable), ("pre-fec-ber", lk.pre_fec_ber)):
                key = (kind, s.device, subject_port)
                self._set(result, kind, key, fn(samples, self.lth, key in self.active), skey)
        elif m == "dci_channel":
            channel = s.tags.get("channel", "")
            key = ("dci-degradation", s.device, channel)
            self._set(result, "dci-degradation", key, lk.dci_degradation(samples, self.lth, key in self.active), skey)
        return result

    @staticmethod
    def _recent(samples: list[Sample]) -> bool:
        return bool(samples) and (samples[-1].value("rx_pause_ps") or 0) > 0

    def state(self, change: lk.StateChange) -> Result:
        result = Result()
        if change.field != "oper_up":
            return result
        port = (change.device, change.interface)
        hist = self.changes[port]
        hist.append(change)
        horizon = change.ts - int(self.history_s * NS)
        while hist and hist[0].ts < horizon:
            hist.popleft()
        flap = lk.flapping(list(hist), self.lth)
        if flap is not None:
            self._set(result, "link-flap", flap.key, flap)
            # a flapping link is one incident, not a link-down every other second: the flap alarm replaces it
            self._set(result, "link-down", ("link-down", change.device, change.interface), None)
            return result
        down = lk.oper_down(change)
        key = ("link-down", change.device, change.interface)
        if down is not None:
            self._set(result, "link-down", key, down)
        elif change.new is True:
            self._set(result, "link-down", key, None)
        return result

    def stream(self, device: str, data: Mapping[str, Any], ts: int) -> Result:
        result = Result()
        finding = dv.device_stream(device, data, ts)
        if finding is not None:
            self._set(result, finding.kind, finding.key, finding)
        elif data.get("state") == "restored":
            for kind in ("device-unreachable", "telemetry-lost"):
                self._set(result, kind, (kind, device, ""), None)
        return result

    # --- periodic scan -------------------------------------------------------------------------------
    def scan(self, now_ns: int, latest: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
             arrivals: Mapping[str, int] | None = None) -> Result:  # fmt: skip
        """Time-driven checks: quiet series clear, flaps age out, silence, and latest-value detectors.

        ``arrivals``: per device, when (wall clock, ns) its collector last received a message from it. Silence is
        measured from the later of that and the newest switch timestamp: a collector that is alive but lags its
        switches (a loaded machine: tens of seconds) still delivers, and is not "telemetry lost" for every switch
        at once; a dead collector stops refreshing its arrivals, a dead stream is reported by the collector itself.
        """
        result = Result()
        for device, arrived in (arrivals or {}).items():
            self.last_seen[device] = max(self.last_seen.get(device, 0), arrived)
        quiet = int(self.quiet_clear_s * NS)
        for key, skey in list(self.source.items()):
            hist = self.series.get(skey)
            if key[0] in ("pfc-storm", "pfc-pause", "ecn-marking", "lossless-drops", "crc-errors",
                          "fec-uncorrectable") and (not hist or now_ns - hist[-1].ts > quiet):  # fmt: skip
                self._set(result, key[0], key, None)
        for key in [k for k in self.active if k[0] == "link-flap"]:
            hist = list(self.changes.get((key[1], key[2]), ()))
            if lk.flapping(hist, self.lth, now_ns) is None:
                self._set(result, "link-flap", key, None)
        if latest:
            # the stream carries only non-zero congestion/error samples: liveness comes from the latest values
            for device, series in latest.items():
                newest = max((int(e.get("ts", 0)) for e in series.values()), default=0)
                if newest:
                    self.last_seen[device] = max(self.last_seen.get(device, 0), newest)
            result.extend(self.scan_latest(latest))
        for device, last in list(self.last_seen.items()):
            key = ("telemetry-lost", device, "")
            silent = dv.telemetry_silence(device, last, now_ns, self.dth)
            if silent is not None and key not in self.active and ("device-unreachable", device, "") not in self.active:
                self._set(result, "telemetry-lost", key, silent)
            elif silent is None and key in self.active:
                self._set(result, "telemetry-lost", key, None)
        return result

    def scan_latest(self, latest: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Result:
        """Detectors over the collector's latest values: hot links, ECMP imbalance, incast, optics trends."""
        result = Result()
        for device, series in latest.items():
            util: dict[str, float] = {}
            ingress: dict[str, float] = {}
            marking: set[str] = set()
            for name, entry in series.items():
                measurement, _, tagtext = name.partition("|")
                tags = dict(kv.split("=", 1) for kv in tagtext.split(",") if "=" in kv)
                fields = entry.get("fields", {})
                port = tags.get("interface", "")
                if measurement == "interface" and port:
                    speed = self.index.port_speed.get((device, port), 400) * 1e9
                    util[port] = max(fields.get("out_bps") or 0.0, 0.0) / speed
                    ingress[port] = max(fields.get("in_bps") or 0.0, 0.0) / speed
                    skey = ("interface-util", device, port)
                    slim = {"out_bps": fields.get("out_bps"), "in_bps": fields.get("in_bps")}  # what hot_link reads
                    # the rates' own sample time (10 s), not the series' (refreshed each second by the discards):
                    # one 10 s sample must not count as ten in the sustain window
                    sampled = max(field_ts(entry, "out_bps"), field_ts(entry, "in_bps"))
                    hist = self._history(skey, Sample("interface", {"device": device, **tags}, slim, sampled))
                    key = ("hot-link", device, port)
                    speed_g = self.index.port_speed.get((device, port), 400)
                    self._set(result, "hot-link", key, cg.hot_link(list(hist), self.cth, speed_g, key in self.active))
                elif measurement == "queue" and port and tags.get("queue") in self.lossless_queues:
                    if (fields.get("ecn_marked_pps") or 0) > 0 or (fields.get("dropped_pps") or 0) > 0:
                        marking.add(port)
                elif (measurement == "optics" and port and "lane" in tags and "input_power_dbm" in fields
                      and self._oper_up(series, port)):  # fmt: skip
                    # a dark port (down, peer off) is the link detectors' business, not an optic's
                    skey = ("optics-lane", device, port, tags["lane"])
                    ts = field_ts(entry, "input_power_dbm")
                    if self.lane_seen.get(skey) == ts:
                        continue
                    self.lane_seen[skey] = ts
                    slim = {"input_power_dbm": fields["input_power_dbm"]}  # what rx_power reads
                    hist = self._history(skey, Sample("optics", {"device": device, **tags}, slim, ts))
                    finding = lk.rx_power(list(hist), self.lth)
                    for kind in ("optic-rx-low", "optic-rx-trend"):
                        key = (kind, device, port)
                        self._set(result, kind, key, finding if finding and finding.kind == kind else None)
            uplinks = self.index.uplinks.get(device, [])
            up_util = {p: util[p] for p in uplinks if p in util and self._carrying(device, p)}
            key = ("ecmp-imbalance", device, "")
            self._set(result, "ecmp-imbalance", key, cg.ecmp_imbalance(device, up_util, self.cth,
                                                                       active=key in self.active))  # fmt: skip
            for port, u in util.items():
                if (device, port) not in self.index.host_ports:
                    continue
                senders = sum(1 for p, v in ingress.items() if p != port and v > 0.1)
                finding = cg.incast(device, port, egress_utilisation=u, marking_or_dropping=port in marking,
                                    senders=senders, th=self.cth)  # fmt: skip
                self._set(result, "incast", ("incast", device, port), finding)
        return result

    @staticmethod
    def _oper_up(series: Mapping[str, Mapping[str, Any]], port: str) -> bool:
        entry = series.get(f"interface|interface={port}")
        return bool(entry and entry.get("fields", {}).get("oper_up"))

    def _carrying(self, device: str, port: str) -> bool:
        link = self.index.port_link.get((device, port))
        return link is not None and self.index.link_state.get(link) == "up"

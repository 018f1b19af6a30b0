"""Alerting: alerts from incidents and telemetry, Alertmanager-style routing, receivers, silences, escalation.

Other apps call :mod:`fabric_ops.alerting.ingest` (``raise_alert`` / ``resolve_alert``); see docs/alerting.md.
"""

"""Telemetry: gNMI collection, normalisation, and InfluxDB storage (writer with spool, InfluxQL queries)."""

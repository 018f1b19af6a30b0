#!/bin/sh
# Runs once, after InfluxDB 2.x's own setup (DOCKER_INFLUXDB_INIT_*): maps the InfluxQL database/retention policy
# fabric_ops/autogen onto the bucket, so FabricOps' InfluxQL reads (/query) work on 2.x exactly as on 1.x and 3.x.
set -eu
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx v1 dbrp create --bucket-id "${bucket_id}" --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --rp autogen --default

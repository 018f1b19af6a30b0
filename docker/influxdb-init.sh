#!/bin/sh
# Runs once, after InfluxDB 2.x's own setup (DOCKER_INFLUXDB_INIT_*), with the admin token in the environment:
# 1. maps the InfluxQL database/retention policy fabric_ops/autogen onto the bucket, so FabricOps' InfluxQL reads
#    (/query) work on 2.x exactly as on 1.x and 3.x;
# 2. creates the application's token, allowed to read and write that one bucket and nothing else, and leaves it in
#    the influx-app-token volume (/run/fabric_ops-influx/token), which the app services mount read-only.
set -eu
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx v1 dbrp create --bucket-id "${bucket_id}" --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --rp autogen --default
token=$(influx auth create --org "${DOCKER_INFLUXDB_INIT_ORG}" --read-bucket "${bucket_id}" \
    --write-bucket "${bucket_id}" --description fabric_ops-app --hide-headers | cut -f3)
umask 022  # the app runs as another uid (fabricops, 10001); only this volume's mounts can see the file
printf '%s\n' "${token}" > /run/fabric_ops-influx/token.tmp
mv /run/fabric_ops-influx/token.tmp /run/fabric_ops-influx/token

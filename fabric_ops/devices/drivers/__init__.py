"""NAPALM drivers FabricOps ships for platforms NAPALM has no sound driver for (Huawei VRP 8)."""

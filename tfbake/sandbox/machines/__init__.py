"""The sandbox's real instances: booted systemd machines (systemd-nspawn) from real Debian roots.

`roots` builds and caches the base roots; `machine` boots, stops and enters one machine;
`fleet` ties machines to EC2 instances, AMIs and snapshots; `agent` runs Run Command documents
inside a machine as the SSM agent would; `reaper` is the guard process that ends every machine
when the sandbox ends, however it ends.
"""

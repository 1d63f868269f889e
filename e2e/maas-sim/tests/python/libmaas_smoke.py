"""Drives the MAAS simulator with python-libmaas, unchanged, as a real MAAS user would.

Reads MAAS_URL and MAAS_API_KEY from the environment; prints one line per step and exits
non-zero on the first thing that is not as MAAS would answer.
"""

import os
import sys

from maas.client import connect
from maas.client.enum import NodeStatus


def main() -> int:
    url = os.environ["MAAS_URL"]
    key = os.environ["MAAS_API_KEY"]
    client = connect(url, apikey=key)
    print("connected")

    machines = client.machines.list()
    print(f"listed {len(machines)} machines")
    assert len(machines) > 0, "no machines listed"
    assert all(m.status == NodeStatus.READY for m in machines), "fresh machines are Ready"

    zones = {z.name for z in client.zones.list()}
    print(f"zones {sorted(zones)}")
    assert "default" in zones

    machine = client.machines.allocate(tags=["gpu"])
    print(f"allocated {machine.system_id} {machine.hostname}")
    assert machine.status == NodeStatus.ALLOCATED
    assert "gpu" in [t.name for t in machine.tags]

    user_data = b"#cloud-config\nruncmd: [echo hello]\n"
    machine.deploy(distro_series="jammy", user_data=user_data, wait=True, wait_interval=0.1)
    machine.refresh()
    print(f"deployed {machine.system_id} status={machine.status_name} ips={machine.ip_addresses}")
    assert machine.status == NodeStatus.DEPLOYED, machine.status_name
    assert machine.ip_addresses, "a deployed machine has an address"

    machine.release(wait=True, wait_interval=0.1)
    machine.refresh()
    print(f"released {machine.system_id} status={machine.status_name}")
    assert machine.status == NodeStatus.READY, machine.status_name
    assert machine.owner is None
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

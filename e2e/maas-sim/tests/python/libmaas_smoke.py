"""Drives the MAAS simulator with python-libmaas, unchanged, as a real MAAS user would.

Reads MAAS_URL and MAAS_API_KEY from the environment; prints one line per step and exits
non-zero on the first thing that is not as MAAS would answer.
"""

import os
import sys
import urllib.parse
import urllib.request

from oauthlib import oauth1

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

    hmac_signed_requests(url, key)
    print("ok")
    return 0


def hmac_signed_requests(url: str, key: str) -> None:
    """Signs with oauthlib's HMAC-SHA1, an implementation independent of the simulator's."""
    consumer, token, secret = key.split(":")
    signer = oauth1.Client(
        consumer, client_secret="", resource_owner_key=token,
        resource_owner_secret=secret, signature_method=oauth1.SIGNATURE_HMAC,
    )
    api = url.rstrip("/") + "/api/2.0/"

    uri, headers, _ = signer.sign(api + "machines/?hostname=" + urllib.parse.quote("node-001"))
    with urllib.request.urlopen(urllib.request.Request(uri, headers=headers)) as resp:
        assert resp.status == 200
    print("hmac GET ok")

    form = urllib.parse.urlencode([("tags", "gpu"), ("agent_name", "hmac agent/1")])
    uri, headers, body = signer.sign(
        api + "machines/?op=allocate", http_method="POST", body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    req = urllib.request.Request(uri, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    print("hmac POST ok")

    bad = oauth1.Client(
        consumer, client_secret="", resource_owner_key=token,
        resource_owner_secret="not-the-secret", signature_method=oauth1.SIGNATURE_HMAC,
    )
    uri, headers, _ = bad.sign(api + "machines/")
    try:
        urllib.request.urlopen(urllib.request.Request(uri, headers=headers))
        raise AssertionError("a wrong HMAC signature was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    print("hmac wrong secret refused")


if __name__ == "__main__":
    sys.exit(main())

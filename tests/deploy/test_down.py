"""`down` after a crash: it finds what runs by namespace, not by what a state file says.

This module runs before test_topology.py (pytest takes modules in name order): it makes and
removes the topology's namespaces itself, which would take the shared topology down.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.topology import BRIDGE, Topology, down, group_alive, make_network, our_namespaces
from tests.deploy.conftest import skip_reason


def test_down_cleans_up_after_a_crash_and_can_run_twice(tmp_path: Path) -> None:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    topo = Topology(tmp_path / "topology")
    down(topo.root)
    # What a crashed `up` leaves behind: the network, a server in its namespace, a
    # half-made state folder, and no record of the server's pid.
    make_network()
    for sub in ("logs", "redis"):
        (topo.root / sub).mkdir(parents=True)
    pid = topo.start("redis")
    assert pid is not None
    topo.wait_ready("redis", 30)
    topo.state_file.unlink()

    down(topo.root)
    down(topo.root)

    assert our_namespaces() == []
    assert not group_alive(pid)
    assert not topo.root.exists()
    link = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True)
    assert link.returncode != 0, "the bridge is still there"

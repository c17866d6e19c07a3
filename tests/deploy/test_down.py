"""`down` after a crash: it finds what runs by namespace, not by what a state file says.

This module runs before test_topology.py (pytest takes modules in name order): it makes and
removes the topology's namespaces itself, which would take the shared topology down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.topology import Topology, alive, down, make_network, our_links, our_namespaces
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
    assert not alive(pid)
    assert not topo.root.exists()
    assert our_links() == [], "the bridge or a veth pair is still there"

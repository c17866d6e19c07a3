"""Host-key pinning for an sftp:// store (the whole path runs in tests/deploy over real sshd)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from assistant.artifacts.ssh import KnownHostsOnly, pinned_options
from assistant.artifacts.store import ArtifactError, ArtifactStore
from assistant.llm.batched import free_port

SSHD = "/usr/sbin/sshd"


def _known_hosts(tmp_path: Path, host: str, key: paramiko.PKey) -> Path:
    known = paramiko.HostKeys()
    known.add(host, key.get_name(), key)
    path = tmp_path / "known_hosts"
    known.save(str(path))
    return path


def test_only_the_listed_key_of_that_host_is_accepted(tmp_path: Path) -> None:
    store_key, other_key = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    policy = KnownHostsOnly(_known_hosts(tmp_path, "10.77.0.43", store_key))
    client = paramiko.SSHClient()
    policy.missing_host_key(client, "10.77.0.43", store_key)  # listed: accepted
    with pytest.raises(paramiko.SSHException, match="not in"):
        policy.missing_host_key(client, "10.77.0.43", other_key)  # an impostor
    with pytest.raises(paramiko.SSHException, match="not in"):
        policy.missing_host_key(client, "[10.77.0.43]:2222", store_key)  # another port
    with pytest.raises(paramiko.SSHException, match="not in"):
        policy.missing_host_key(client, "10.77.0.44", store_key)  # another host


def test_a_missing_known_hosts_file_refuses_every_key(tmp_path: Path) -> None:
    policy = KnownHostsOnly(tmp_path / "absent")
    with pytest.raises(paramiko.SSHException, match="cannot read"):
        policy.missing_host_key(paramiko.SSHClient(), "h", paramiko.ECDSAKey.generate())


def test_the_option_becomes_the_policy_and_leaves_paramiko_its_own(tmp_path: Path) -> None:
    options = pinned_options({"username": "u", "known_hosts": str(tmp_path / "k")})
    assert options["username"] == "u" and "known_hosts" not in options
    assert isinstance(options["host_key_policy"], KnownHostsOnly)
    assert pinned_options({"username": "u"}) == {"username": "u"}  # fsspec's default stays


def test_an_unreachable_sftp_store_is_an_artifact_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="sftp://127.0.0.1"):
        ArtifactStore(
            "sftp://127.0.0.1/srv",
            {"port": 1, "known_hosts": str(tmp_path / "k"), "timeout": 2},
        )


@pytest.fixture()
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real OpenSSH server on loopback with a fresh host key: (port, host public key)."""
    if not Path(SSHD).is_file() or os.geteuid() != 0:
        pytest.skip("needs OpenSSH's sshd (scripts/test.sh installs it) and root")
    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {key}\nPidFile {tmp_path / 'pid'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    )
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline and server.poll() is None, "sshd did not start"
            time.sleep(0.1)
        yield port, key.with_suffix(".pub")
    finally:
        server.terminate()
        server.wait(10)


def test_a_real_server_with_another_host_key_is_refused_before_any_login(
    sshd: tuple[int, Path], tmp_path: Path
) -> None:
    port, host_public = sshd
    impostor = paramiko.ECDSAKey.generate()  # what the known_hosts file expects instead
    known_hosts = _known_hosts(tmp_path, f"[127.0.0.1]:{port}", impostor)
    options = {"port": port, "username": "nobody", "known_hosts": str(known_hosts)}
    options |= {"look_for_keys": False, "allow_agent": False, "timeout": 5}
    with pytest.raises(ArtifactError, match="is not in"):
        ArtifactStore("sftp://127.0.0.1/srv", options)
    # With the server's real key listed, the key check passes and the login is what fails
    # (no account or key here): proof that the pinning, not the network, refused above.
    algorithm, data = host_public.read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {algorithm} {data}\n")
    with pytest.raises(ArtifactError) as refused:
        ArtifactStore("sftp://127.0.0.1/srv", options)
    assert "is not in" not in str(refused.value)
    assert "uthentication" in str(refused.value), refused.value

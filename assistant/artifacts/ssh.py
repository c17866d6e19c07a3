"""Host-key pinning for an ``sftp://`` artifact store.

fsspec's SFTP client loads no known_hosts file, and its default policy trusts whatever key a
server shows on first sight. With ``"known_hosts": "/path"`` in ``artifacts.options`` the
store accepts only a key that file lists for the store's host, checked after the key
exchange and before the client authenticates or moves a byte.
"""

from __future__ import annotations

from pathlib import Path

import paramiko

KNOWN_HOSTS_OPTION = "known_hosts"


class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
    """Accept a server's host key only when ``path`` (OpenSSH's format) lists it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        # Read on every connection: a rotated key takes effect without a restart.
        try:
            known = paramiko.HostKeys(str(self.path))
        except OSError as exc:
            raise paramiko.SSHException(f"cannot read known hosts {self.path}: {exc}") from exc
        entry = known.lookup(hostname)  # paramiko names a non-22 port "[host]:port"
        if entry is None or entry.get(key.get_name()) != key:
            raise paramiko.SSHException(
                f"the {key.get_name()} host key of {hostname} is not in {self.path}: refusing "
                "to connect (a changed key, or a server that is not the artifact store)"
            )

    def __repr__(self) -> str:  # fsspec keys its cached connections by their options' text
        return f"KnownHostsOnly({str(self.path)!r})"


def pinned_options(options: dict[str, object]) -> dict[str, object]:
    """The fsspec SFTP options with ``known_hosts`` turned into the policy that enforces it."""
    options = dict(options)
    path = options.pop(KNOWN_HOSTS_OPTION, None)
    if path is not None:
        options["host_key_policy"] = KnownHostsOnly(Path(str(path)))
    return options

"""The domain controller's Kerberos: a real MIT KDC (Debian krb5-kdc) made from the lab model.

`Kdc.start()` writes its own kdc.conf and krb5.conf in a private directory (KRB5_KDC_PROFILE and
KRB5_CONFIG point the MIT tools at them, never at /etc), creates the realm database
(`kdb5_util create -s`), adds the users (`+requires_preauth`, as Active Directory requires
pre-authentication) and one service principal per host, `TERMSRV/<fqdn>`, whose keys go into a
keytab per host (`kadmin.local ktadd`), then runs `krb5kdc -n` on a free loopback port (or
inside a network namespace through `prefix`). The directory and the process are written to a
state file first, so `rdplab down --all` removes them after a kill -9; the KDC also dies with
the process that started it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..net.ports import free_port
from ..net.state import LabState, default_state_dir, process_start

KDC_TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc", "kinit", "kvno")
# What the client machine's Kerberos needs (harness/probe/kerberos.py), also when the KDC is a
# real Active Directory DC (the Vagrant backend): Debian krb5-user.
CLIENT_TOOLS = ("kinit", "kvno")
# Seconds: MIT's default and Active Directory's "Maximum tolerance for computer clock
# synchronization" (5 minutes).
CLOCKSKEW = 300
START_TIMEOUT = 10.0
PORT_ATTEMPTS = 5  # krb5kdc launches when another process takes the picked port first
_PR_SET_PDEATHSIG = 1
_PORT_TAKEN = "Address already in use"


def missing_tools() -> list[str]:
    """The MIT Kerberos programs missing here (Debian krb5-kdc, krb5-admin-server, krb5-user)."""
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [t for t in KDC_TOOLS if shutil.which(t, path=search) is None]


def missing_client_tools() -> list[str]:
    """The MIT Kerberos client programs missing here (Debian krb5-user)."""
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [t for t in CLIENT_TOOLS if shutil.which(t, path=search) is None]


def krb5_conf_text(realm: str, kdc: str, names: Sequence[str]) -> str:
    """A krb5.conf for a client of `realm` whose KDC is at `kdc` ("address:port"), over TCP,
    with no DNS lookups; `names` (host names, or ".domain" for a whole domain) map to the
    realm. The clock skew allowed is MIT's and Active Directory's (CLOCKSKEW), and a skew is
    reported, not silently adopted from the KDC (see docs/kerberos.md)."""
    return (
        "[libdefaults]\n"
        f" default_realm = {realm}\n"
        " dns_lookup_kdc = false\n dns_lookup_realm = false\n rdns = false\n"
        f" clockskew = {CLOCKSKEW}\n"
        " kdc_timesync = 0\n"
        " udp_preference_limit = 1\n"
        "[realms]\n"
        f" {realm} = {{\n  kdc = {kdc}\n }}\n"
        "[domain_realm]\n"
        + "".join(f" {name} = {realm}\n" for name in names)
    )


def _tool(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class KdcError(RuntimeError):
    """The KDC could not be set up (a tool failed or is missing)."""


class Kdc:
    """One realm's KDC. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        realm: str,
        users: Mapping[str, str],
        hosts: Sequence[str],
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        parent: Path | None = None,
        state_dir: Path | None = None,
        state: LabState | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.realm = realm.upper()
        self.users = dict(users)
        self.hosts = [h.lower() for h in hosts]
        self.address = address
        self.port = port
        self._parent = Path(parent) if parent else Path(os.environ.get("TMPDIR", "/tmp"))
        self._state_dir = state_dir
        self._own_state = state is None
        self.state = state
        self._prefix = list(prefix)
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- files ---------------------------------------------------------------------------------

    @property
    def krb5_conf(self) -> Path:
        assert self.dir is not None
        return self.dir / "krb5.conf"

    def keytab(self, host: str) -> Path:
        assert self.dir is not None
        return self.dir / f"{host.lower()}.keytab"

    def service_principal(self, host: str) -> str:
        return f"TERMSRV/{host.lower()}@{self.realm}"

    def user_principal(self, user: str) -> str:
        return f"{user}@{self.realm}"

    def env(self) -> dict[str, str]:
        """The environment MIT's tools need for this realm (and nothing from /etc)."""
        assert self.dir is not None
        return {
            **os.environ,
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.dir / "kdc.conf"),
            "KRB5CCNAME": f"FILE:{self.dir / 'admin.ccache'}",
        }

    def _write_configs(self) -> None:
        d = self.dir
        assert d is not None
        listen = f"{self.address}:{self.port}"
        (d / "kdc.conf").write_text(
            "[kdcdefaults]\n"
            f" kdc_listen = {listen}\n kdc_tcp_listen = {listen}\n"
            "[realms]\n"
            f" {self.realm} = {{\n"
            f"  database_name = {d / 'principal'}\n"
            f"  key_stash_file = {d / 'stash'}\n"
            f"  acl_file = {d / 'kadm5.acl'}\n"
            f"  kdc_listen = {listen}\n  kdc_tcp_listen = {listen}\n"
            "  max_life = 10h 0m 0s\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            " }\n"
            "[logging]\n"
            f" kdc = FILE:{d / 'kdc.log'}\n"
        )
        (d / "kadm5.acl").write_text("")
        self.krb5_conf.write_text(krb5_conf_text(self.realm, listen, self.hosts))

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Kdc:
        missing = missing_tools()
        if missing:
            raise KdcError(
                f"missing MIT Kerberos tools: {', '.join(missing)} "
                "(Debian packages krb5-kdc krb5-admin-server krb5-user)"
            )
        if self.state is None:
            self.state = LabState.new(
                self._state_dir or default_state_dir(), f"kdc-{uuid.uuid4().hex[:12]}"
            )
        path = self._parent / f"rdplab-kdc-{uuid.uuid4().hex[:12]}"
        self.state.add({"kind": "tempdir", "path": str(path)})
        path.mkdir(mode=0o700)
        self.dir = path
        auto_port = self.port is None
        if auto_port:
            self.port = free_port(self.address, udp=True)
        self._write_configs()
        env = self.env()
        self._run([_tool("kdb5_util"), "-r", self.realm, "create", "-s", "-P",
                   secrets.token_hex(16)], env)
        script = [f"addprinc -pw {pw} +requires_preauth {user}" for user, pw in self.users.items()]
        for host in self.hosts:
            script.append(f"addprinc -randkey TERMSRV/{host}")
            script.append(f"ktadd -k {self.keytab(host)} TERMSRV/{host}")
        self._run([_tool("kadmin.local"), "-r", self.realm], env, "\n".join(script) + "\n")
        for host in self.hosts:
            if not self.keytab(host).exists():
                raise KdcError(f"kadmin.local made no keytab for TERMSRV/{host}")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._launch(env)
                return self
            except KdcError as exc:
                if not (auto_port and attempt < PORT_ATTEMPTS and _PORT_TAKEN in str(exc)):
                    raise
            self._forget_process()
            self.port = free_port(self.address, udp=True)
            self._write_configs()
            (self.dir / "kdc.log").unlink(missing_ok=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, env: dict[str, str]) -> None:
        """Run krb5kdc and wait until it listens (KdcError with its log when it exits)."""
        self.process = subprocess.Popen(
            [*self._prefix, _tool("krb5kdc"), "-n", "-r", self.realm],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        pid = self.process.pid
        assert self.state is not None
        self.state.add({"kind": "pid", "pid": pid, "start": process_start(pid)})
        self._wait_listening()

    def _forget_process(self) -> None:
        """Drop the process and its state record (once krb5kdc has exited)."""
        proc, self.process = self.process, None
        if proc is not None and self.state is not None:
            self.state.discard(*[r for r in self.state.resources
                                 if r.get("kind") == "pid" and r.get("pid") == proc.pid])

    def _run(self, cmd: list[str], env: dict[str, str], stdin: str | None = None) -> None:
        try:
            done = subprocess.run(cmd, env=env, input=stdin, text=True,
                                  capture_output=True, timeout=30, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired as exc:
            raise KdcError(f"{cmd[0]} did not finish in 30 s") from exc
        # kadmin.local reports a failed query on stderr but exits 0: look at both.
        bad = [ln for ln in done.stderr.splitlines() if ln.startswith(("add_principal:", "kadmin"))
               and ("error" in ln.lower() or "while" in ln)]
        if done.returncode != 0 or bad:
            raise KdcError(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()}")

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None and self.port is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.dir / "kdc.log").read_text() if self.dir else ""
                raise KdcError(f"krb5kdc exited with {self.process.returncode}: {log[-500:]}")
            if not self._prefix:
                try:
                    with socket.create_connection((self.address, self.port), timeout=0.2):
                        return
                except OSError:
                    pass
            elif self.dir is not None and "commencing operation" in (
                (self.dir / "kdc.log").read_text() if (self.dir / "kdc.log").exists() else ""
            ):
                return
            time.sleep(0.01)
        raise KdcError(f"krb5kdc did not listen on {self.address}:{self.port} in {START_TIMEOUT} s")

    def stop(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._forget_process()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.state is not None:
                self.state.discard({"kind": "tempdir", "path": str(self.dir)})
            self.dir = None
        if self.state is not None and self._own_state:
            self.state.remove()
            self.state = None

    def __enter__(self) -> Kdc:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

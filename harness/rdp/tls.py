"""TLS without sockets: an ssl.SSLObject over memory BIOs, ciphertext in and out.

The RDP core hands it the bytes that arrived after the X.224 exchange and takes back the bytes to
send; plaintext is read and written through it. Contexts are built here so that the probe and the
host configure versions and legacy security levels the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import ProtocolFailure, RdpError

TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _tls_version(name: str) -> ssl.TLSVersion:
    try:
        return TLS_VERSIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown TLS version {name!r}; use one of {sorted(TLS_VERSIONS)}"
        ) from None


def _apply_versions(ctx: ssl.SSLContext, tls_min: str, tls_max: str, legacy: bool) -> None:
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, and exactly what legacy hosts use
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _tls_version(tls_min)
        ctx.maximum_version = _tls_version(tls_max)
    if legacy or ctx.minimum_version < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses TLS < 1.2 at its default security level; a legacy peer needs level 0.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")


def client_context(tls_min: str = "TLSv1.2", tls_max: str = "TLSv1.3") -> ssl.SSLContext:
    """A client context that accepts any certificate: verification is done afterwards, by policy."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _apply_versions(ctx, tls_min, tls_max, legacy=False)
    return ctx


_server_cache: dict[tuple[bytes, str, str], ssl.SSLContext] = {}
_cache_lock = threading.Lock()


def server_context(cert_pem: bytes, key_pem: bytes, tls_min: str, tls_max: str) -> ssl.SSLContext:
    """A server context for this certificate and key; raises ssl.SSLError if they are unusable.

    Contexts are cached by the digest of the PEM bytes, so a changed file gives a new context while
    an unchanged one costs nothing.
    """
    digest = hashlib.sha256(cert_pem + b"\0" + key_pem).digest()
    key = (digest, tls_min, tls_max)
    with _cache_lock:
        cached = _server_cache.get(key)
    if cached is not None:
        return cached
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_versions(ctx, tls_min, tls_max, legacy=False)
    _load_chain(ctx, cert_pem, key_pem)
    with _cache_lock:
        if len(_server_cache) > 64:
            _server_cache.clear()
        _server_cache[key] = ctx
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """load_cert_chain from bytes: through anonymous memory files (memfd), so that the private
    key never touches a directory a kill -9 could leave behind; a temporary folder where memfd
    is not available."""
    if hasattr(os, "memfd_create"):
        fds = []
        try:
            for data in (cert_pem, key_pem):
                fd = os.memfd_create("rdplab-tls", os.MFD_CLOEXEC)
                fds.append(fd)
                os.write(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
            return
        except OSError:
            pass
        finally:
            for fd in fds:
                os.close(fd)
    with tempfile.TemporaryDirectory(prefix="rdplab-tls-") as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        ctx.load_cert_chain(cert_path, key_path)


@dataclass(frozen=True)
class TlsInfo:
    """What the handshake settled: version, cipher, and the peer's certificate (DER)."""

    version: str
    cipher: str
    peer_cert_der: bytes | None


class TlsRecordError(RdpError):
    """A TLS record that does not decrypt after the handshake: the peer's stage fails, not TLS."""


class TlsEndpoint:
    """One side of a TLS session driven entirely through memory buffers."""

    def __init__(
        self, ctx: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ):
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(
            self._in,
            self._out,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
        )
        self.handshake_done = False
        self.info: TlsInfo | None = None

    def feed(self, ciphertext: bytes) -> None:
        """Hand over bytes received from the peer."""
        if ciphertext:
            self._in.write(ciphertext)

    def outgoing(self) -> bytes:
        """Ciphertext waiting to be sent to the peer."""
        return self._out.read()

    def do_handshake(self) -> bool:
        """Advance the handshake; True once complete. Raises ProtocolFailure on a TLS error."""
        if self.handshake_done:
            return True
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLError, OSError) as exc:
            raise ProtocolFailure("tls", _describe_ssl_error(exc)) from exc
        self.handshake_done = True
        cipher = self._obj.cipher()
        self.info = TlsInfo(
            version=self._obj.version() or "?",
            cipher=cipher[0] if cipher else "?",
            peer_cert_der=self._obj.getpeercert(binary_form=True),
        )
        return True

    def read(self) -> bytes:
        """All plaintext available now (b'' when none)."""
        chunks: list[bytes] = []
        while True:
            try:
                data = self._obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                break
            except (ssl.SSLError, OSError) as exc:
                if self.handshake_done:  # a corrupt record later: the stage reached fails
                    raise TlsRecordError(f"TLS record: {_describe_ssl_error(exc)}") from exc
                raise ProtocolFailure("tls", _describe_ssl_error(exc)) from exc
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        """Send close_notify, the clean end of a TLS session (the peer's is not awaited)."""
        # unwrap() then waits for the peer's close_notify; ours is in outgoing() already
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError, OSError):
            self._obj.unwrap()

    def write(self, plaintext: bytes) -> None:
        """Encrypt plaintext; the ciphertext is then available from outgoing()."""
        view = memoryview(plaintext)
        while view:
            n = self._obj.write(view[:16384])
            view = view[n:]


def _describe_ssl_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        lib = getattr(exc, "library", None) or ""
        text = reason or str(exc)
        return f"{lib + ': ' if lib else ''}{text}"
    return str(exc) or type(exc).__name__

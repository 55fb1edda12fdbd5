"""Size budgets for every length-prefixed structure the lab reads from a peer.

One place for every maximum, each at what Windows accepts (with its source), so a hostile claim
is refused as soon as its length field is read, before a byte of it is buffered. Decoders check
claims through `check_claim` (or `Reader.claim`), which raises the typed ParseError.

Sources (see docs/rdp-facts.md §16):
- TSRequest: Windows caps a security token at MaxTokenSize (48000 bytes by default since
  Windows 8 / Server 2012, 65535 the documented maximum); a TSRequest is one token plus a few
  hundred bytes (version, pubKeyAuth, nonce, errorCode).
- TPKT: a 16-bit length (RFC 1006); fast-path: 15 bits (MS-RDPBCGR 2.2.9.1.2).
- MS-TSGU packets: a DATA packet carries at most 0xFFFF bytes (tsgu.MAX_PACKET).
- HTTP heads: HTTP.sys, which serves RD Gateway, refuses a request head above MaxRequestBytes
  (16384 by default) with 400; the probe reads responses up to 64 KiB.
- WebSocket frames: 1 MiB (RD Gateway frames carry one MS-TSGU packet each).
- X.509 certificates: OpenSSL's default max_cert_list (100 KiB) bounds the TLS chain.
"""

from __future__ import annotations

from .errors import ParseError

MAX_TOKEN_SIZE = 65535
"""MaxTokenSize's documented maximum (Kerberos/NTLM/SPNEGO token)."""

MAX_TSREQUEST = MAX_TOKEN_SIZE + 4096
"""A whole TSRequest: one token plus the other fields."""

MAX_NEGO_TOKENS = 8
"""negoTokens items in one TSRequest (Windows and FreeRDP send exactly one)."""

MAX_BER_ELEMENTS = 4096
"""Elements in one constructed BER value (MCS and CredSSP have a handful)."""

MAX_TPKT = 0xFFFF
MAX_FASTPATH = 0x7FFF
MAX_HTTP_REQUEST_HEAD = 16384
MAX_HTTP_RESPONSE_HEAD = 64 * 1024
MAX_HTTP_BODY = 1 << 20
"""An HTTP body the lab reads whole (gateway error pages, seeds); larger is refused."""

MAX_WS_PAYLOAD = 1 << 20
MAX_CERTIFICATE_CHAIN = 100 * 1024


def check_claim(what: str, claimed: int, maximum: int) -> int:
    """`claimed` when it is within `maximum`, else a ParseError naming the budget."""
    if claimed < 0:
        raise ParseError(what, f"negative length {claimed}")
    if claimed > maximum:
        raise ParseError(what, f"claims {claimed} bytes, more than the {maximum}-byte maximum")
    return claimed

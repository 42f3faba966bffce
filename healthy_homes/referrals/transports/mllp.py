"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol) for the sending side.

A message travels as ``<VT> payload <FS><CR>``; the receiver answers one framed ACK
on the same connection. Connection and timeout failures are retryable: the message
is idempotent by its control id and referral id, so sending it again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from healthy_homes.errors import DeliveryError

START, END = b"\x0b", b"\x1c\x0d"
MAX_ACK_BYTES = 1 << 20


def frame(payload: str) -> bytes:
    """One MLLP frame around an ER7 message."""
    return START + payload.encode("utf-8") + END


def unframe(data: bytes) -> str:
    """The ER7 message inside one MLLP frame."""
    start = data.find(START)
    end = data.find(END, start + 1)
    if start < 0 or end < 0:
        raise ValueError("not an MLLP frame")
    return data[start + 1 : end].decode("utf-8")


async def exchange(
    host: str,
    port: int,
    payload: str,
    *,
    ack_seconds: float,
    tls: ssl.SSLContext | None = None,
    referral: str | None = None,
) -> str:
    """Send one message and return the framed answer's content."""
    try:
        async with asyncio.timeout(ack_seconds):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            try:
                writer.write(frame(payload))
                await writer.drain()
                answer = await reader.readuntil(END)
            finally:
                writer.close()
                # The ACK is already read (or the error raised): a rude close changes nothing.
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise DeliveryError(
            f"MLLP peer {host}:{port} did not acknowledge in {ack_seconds:g}s",
            retryable=True,
            referral=referral,
        ) from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise DeliveryError(
            f"MLLP peer {host}:{port} unreachable or cut off: {type(exc).__name__}",
            retryable=True,
            referral=referral,
        ) from exc
    try:
        return unframe(answer)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeliveryError(
            f"MLLP peer {host}:{port} answered with a malformed frame",
            retryable=True,
            referral=referral,
        ) from exc

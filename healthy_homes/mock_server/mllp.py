"""A stand-in HL7 v2 receiver over MLLP, for tests and demos.

Standalone asyncio server (``await MllpReceiver().start()`` on a free loopback port).
Each framed message is parsed with hl7apy and answered with an ACK whose MSA-1 is the
next code in :attr:`MllpReceiver.script` (``AA`` once the script is empty). Accepted
referrals are kept once per RF1-6 (originating referral id): a resend of a referral it
already holds is answered AA and stored no second time, like a receiver that
de-duplicates. Nothing here imports the connector or the domain packages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import UTC, datetime
from itertools import count

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

START, END = b"\x0b", b"\x1c\x0d"


class MllpReceiver:
    """Accepts REF messages and answers scripted ACKs."""

    def __init__(self, script: list[str] | None = None) -> None:
        self.script: deque[str] = deque(script or [])
        #: Every message received, in order (ER7 text), duplicates included.
        self.received: list[str] = []
        #: Accepted referrals by RF1-6, each once; cancellations (I14) by the same key.
        self.referrals: dict[str, str] = {}
        self.cancelled: set[str] = set()
        self._server: asyncio.Server | None = None
        self._ids = count(1)

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> MllpReceiver:
        """Listen (port 0: a free one)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        return self

    async def close(self) -> None:
        """Stop listening and wait for open connections to finish."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    data = await reader.readuntil(END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                text = data[data.find(START) + 1 : -len(END)].decode("utf-8")
                writer.write(START + self.answer(text).encode("utf-8") + END)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def answer(self, text: str) -> str:
        """The ACK for one message (and the bookkeeping of what it held)."""
        self.received.append(text)
        try:
            msg = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT)
            control, event = msg.msh.msh_10.to_er7(), msg.msh.msh_9.to_er7().split("^")
        except (HL7apyException, AttributeError, IndexError):
            return self._ack("AR", "", "I12", "unparseable message")
        code = self.script.popleft() if self.script else "AA"
        if code == "AA" and len(event) > 1:
            key = msg.rf1.rf1_6.to_er7().split("^")[0]
            if event[1] == "I14":
                self.cancelled.add(key)
            else:
                self.referrals.setdefault(key, text)
        return self._ack(code, control, event[1] if len(event) > 1 else "I12", "")

    def _ack(self, code: str, control: str, event: str, text: str) -> str:
        ack = Message("ACK", version="2.5", validation_level=VALIDATION_LEVEL.TOLERANT)
        ack.msh.msh_3 = "HOUSING"
        ack.msh.msh_5 = "HEALTHY_HOMES"
        ack.msh.msh_7 = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        ack.msh.msh_9 = f"ACK^{event}^ACK"
        ack.msh.msh_10 = f"ACK{next(self._ids)}"
        ack.msh.msh_11 = "P"
        ack.msh.msh_12 = "2.5"
        msa = ack.add_segment("MSA")
        msa.msa_1 = code
        msa.msa_2 = control
        if text or code != "AA":
            msa.msa_3 = text or {"AE": "application error", "AR": "rejected"}.get(code, code)
        result: str = ack.to_er7()
        return result

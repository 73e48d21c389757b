"""A counting TCP relay for benches: sits between a culler and the Hub and counts the HTTP
requests and the bytes that pass each way."""

from __future__ import annotations

import asyncio
import threading
from typing import Optional


class CountingRelay:
    """Forwards ``127.0.0.1:<port>`` to ``target_port``, in a thread of its own."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.requests = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def reset(self) -> None:
        self.requests = self.bytes_up = self.bytes_down = 0

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()

        async def start() -> None:
            server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if upstream:
                        self.bytes_up += len(chunk)
                        # Every request line ends so; the cullers' bodies are tiny JSON objects.
                        self.requests += chunk.count(b" HTTP/1.1\r\n")
                    else:
                        self.bytes_down += len(chunk)
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

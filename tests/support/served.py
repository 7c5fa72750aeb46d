"""The API served by uvicorn on a free port, in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.support.ports import free_port


@contextlib.asynccontextmanager
async def served(settings: object) -> AsyncIterator[str]:
    """The app of `settings` (no purge, no engine), served until the block ends; yields its base URL."""
    import uvicorn

    from api.app import create_app

    port = free_port()
    app = create_app(settings, purge=False, processing=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

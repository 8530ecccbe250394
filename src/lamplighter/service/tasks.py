"""Ending tasks within a bound, whether or not they let themselves be cancelled; or letting them finish first."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def end_tasks(tasks: list[asyncio.Task[None]], bound: float) -> None:
    """Cancel tasks and wait for them at most `bound` seconds; a task that swallows the cancel is left."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=bound)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
    for task in pending:
        log.warning("%s did not stop within %g s (a library swallowed the cancel?); leaving it", task.get_name(), bound)


async def finish_tasks(tasks: list[asyncio.Task[None]], bound: float) -> None:
    """Let tasks finish by themselves (closing connections, say) for at most `bound` seconds, then end the rest."""
    if tasks:
        await asyncio.wait(tasks, timeout=bound)
    await end_tasks(tasks, bound)

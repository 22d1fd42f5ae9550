"""Ctrl-C for the commands that run to an end (``replay``, ``backtest``): it ends them with
``KeyboardInterrupt`` at a place where they can clean up, whenever it comes.

``asyncio.run`` handles SIGINT only once its loop runs: ``asyncio.Runner`` builds the loop
first (in ``__enter__``), and a Ctrl-C in those microseconds raised ``KeyboardInterrupt``
inside ``BaseEventLoop.__init__``, whose half-built loop then printed a traceback from its
``__del__``. :func:`run_interruptible` holds SIGINT from before the loop is built until it is
closed, and cancels the running coroutine when it comes. (The daemon, ``run``, blocks SIGINT
and SIGTERM until its own handlers are installed instead.)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar, cast

__all__ = ["Interrupt", "run_interruptible", "sigint_held"]

T = TypeVar("T")


class Interrupt:
    """What :func:`sigint_held` noted: whether Ctrl-C came, and what to do when it comes."""

    def __init__(self) -> None:
        self.caught = False
        self.then: Callable[[], None] | None = None

    def note(self, _signum: int, _frame: object) -> None:
        if self.caught:  # a second Ctrl-C: stop at once, as asyncio.run does
            raise KeyboardInterrupt
        self.caught = True
        if self.then is not None:
            self.then()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigint_held() -> Iterator[Interrupt]:
    """A Ctrl-C while the block runs is noted (and ``then`` of what is yielded is called) and
    raises ``KeyboardInterrupt`` at the block's end, where the caller can clean up, not halfway
    through building an event loop or forking a worker. A signal mask would not do: another
    thread may take the signal, and Python raises it in the main thread anyway. Nothing is
    held when SIGINT is ignored or handled by someone else, or outside the main thread (only
    it may set a handler). A child forked meanwhile inherits the handler: it should set its
    own disposition first thing."""
    interrupt = Interrupt()
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler or not _main_thread():
        yield interrupt
        return
    signal.signal(signal.SIGINT, interrupt.note)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
        if interrupt.caught:
            raise KeyboardInterrupt


def run_interruptible(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a loop of its own, with SIGINT held from before the loop is
    built until it is closed: a Ctrl-C cancels the task running ``main()`` (as
    ``asyncio.Runner``'s own handler does) and is raised as ``KeyboardInterrupt`` once the loop
    is closed. ``main`` is called inside the running task, so a Ctrl-C before that leaves no
    coroutine unawaited."""
    with sigint_held() as interrupt, asyncio.Runner() as runner:
        loop = runner.get_loop()

        async def task() -> T:
            current = cast("asyncio.Task[T]", asyncio.current_task())

            def cancel() -> None:
                current.cancel()
                loop.call_soon_threadsafe(lambda: None)  # wake the loop from its select

            interrupt.then = cancel
            if interrupt.caught:
                raise asyncio.CancelledError
            return await main()

        try:
            return runner.run(task())
        finally:
            interrupt.then = None

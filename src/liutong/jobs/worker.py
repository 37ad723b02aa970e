"""The worker loop: dispatch the outbox, run due jobs, pause when there is nothing to do.

``liutong worker`` runs one in the foreground — as many as wanted, on as many machines; on
PostgreSQL they share the work and never take the same job. ``liutong serve`` runs one in a
background thread, so the embedded default needs no second process.

Handlers and subscribers are registered when the modules that define them are imported; a
worker imports ``HANDLER_MODULES`` and only claims the jobs and events it has a handler or
subscriber for. A long-running worker also calls the registered schedulers when it starts and
every ``SCHEDULE_EVERY`` (the nightly points runs); they are idempotent, so any number of workers
may do so.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from liutong.jobs.service import dispatch_outbox, run_due, run_schedulers

if TYPE_CHECKING:
    from liutong.bootstrap import Runtime

log = logging.getLogger("liutong.jobs")

#: The modules whose import registers job handlers, subscribers and schedulers.
HANDLER_MODULES = ("liutong.ledger.tasks", "liutong.members.tier_review", "liutong.program.behaviour")
SCHEDULE_EVERY = timedelta(hours=1)


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def default_worker_id() -> str:
    """Host, process and a random suffix: unique even for two workers in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(self, runtime: Runtime, *, worker_id: str | None = None, poll_seconds: float = 1.0,
                 batch: int = 100) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or default_worker_id()
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_schedule = 0.0
        load_handlers()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run_once(self) -> int:
        """One pass; returns how many events and jobs it handled.

        The outbox goes first, so a job its subscribers schedule runs in the same pass. Jobs
        are taken one at a time and the stop flag is checked between them: stopping waits for
        the job in hand, not for a whole batch.
        """
        handled = dispatch_outbox(self.runtime)
        for _ in range(self.batch):
            if self.stopping or not run_due(self.runtime, worker_id=self.worker_id, limit=1):
                break
            handled += 1
        return handled

    def schedule(self) -> int:
        """Call the schedulers now, then not again before ``SCHEDULE_EVERY`` has passed."""
        scheduled = run_schedulers(self.runtime)
        self._next_schedule = time.monotonic() + SCHEDULE_EVERY.total_seconds()
        return scheduled

    def run_forever(self) -> None:
        """Run passes until ``stop()``; pause ``poll_seconds`` after a pass that found nothing.

        The schedulers run first and then every ``SCHEDULE_EVERY``. A pass that fails (the
        database is unreachable) is logged and tried again after the pause: the jobs it held are
        retried when their leases expire.
        """
        log.info("worker %s started", self.worker_id)
        while not self.stopping:
            try:
                if time.monotonic() >= self._next_schedule:
                    self.schedule()
                handled = self.run_once()
            except Exception:
                log.exception("worker %s: pass failed", self.worker_id)
                handled = 0
            if not handled:
                self._stopping.wait(self.poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def start(self) -> Worker:
        """Run the loop in a background thread (the in-process worker of ``liutong serve``)."""
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run_forever, name=f"liutong-worker-{self.worker_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, timeout: float | None = 30) -> None:
        """Ask the loop to stop after the job in hand; wait for the background thread if any."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("worker %s still busy after %ss; leaving it to finish", self.worker_id, timeout)


def run_once(runtime: Runtime, *, worker_id: str | None = None) -> int:
    return Worker(runtime, worker_id=worker_id).run_once()


def run_forever(runtime: Runtime, *, worker_id: str | None = None, poll_seconds: float = 1.0) -> None:
    """Run a worker in the calling thread until the process is interrupted."""
    Worker(runtime, worker_id=worker_id, poll_seconds=poll_seconds).run_forever()

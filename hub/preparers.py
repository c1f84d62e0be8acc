"""The hub's preparing processes: decode and authenticate beside the writer, each fed by its own pipe.

A pipe per worker and a feeder thread per pipe, rather than a ProcessPoolExecutor: its shared
queues are guarded by named semaphores, which a hub killed with SIGKILL leaves behind for the
resource tracker to clean up and complain about. Pipes close with the process that held them.

Each worker answers its jobs in the order they were sent. A worker that dies (killed, out of
memory) or takes longer than `timeout_s` on one job fails all the jobs it holds (`result` returns
None: the caller prepares them itself) and is started again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from hub.prepare import Prepared, prepare_in_worker, worker_init

__all__ = ["Job", "PreparerPool"]

log = logging.getLogger("pingjia.hub")

_NOT_YET = object()


@dataclass(eq=False)
class Job:
    """One chunk of messages sent to one worker; `PreparerPool.result` gives what it made of them."""

    worker: _Worker
    value: object = _NOT_YET


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    outbox: queue.SimpleQueue[object]
    feeder: threading.Thread
    waiting: deque[Job] = field(default_factory=deque)  # sent, not yet answered, oldest first
    alive: bool = True


class PreparerPool:
    def __init__(self, size: int, *, timeout_s: float = 60.0) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._timeout_s = timeout_s
        self.restarts = 0
        self._workers = [self._start() for _ in range(size)]
        # Wait for every worker to be up: started on demand, the first rating would wait (~90 ms).
        for job in [self.submit(index, [], {}) for index in range(size)]:
            self.result(job)

    @property
    def size(self) -> int:
        return len(self._workers)

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_serve, args=(theirs, os.getpid()), name="pj-prepare", daemon=True)
        process.start()
        theirs.close()
        outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        feeder = threading.Thread(target=_feed, args=(ours, outbox), name="pj-prepare-feed", daemon=True)
        feeder.start()
        return _Worker(process=process, conn=ours, outbox=outbox, feeder=feeder)

    def submit(self, index: int, messages: Sequence[tuple[str, bytes]], keys: Mapping[str, str]) -> Job:
        """Send a chunk to worker `index`; never blocks (a feeder thread writes the pipe)."""
        worker = self._workers[index]
        job = Job(worker)
        if not worker.alive:
            job.value = None
            return job
        worker.waiting.append(job)
        worker.outbox.put((list(messages), dict(keys)))
        return job

    def result(self, job: Job) -> list[Prepared] | None:
        """What the worker made of the job's messages, or None if it could not (prepare them here)."""
        worker = job.worker
        while job.value is _NOT_YET:
            oldest = worker.waiting[0]
            try:
                if not worker.conn.poll(self._timeout_s):
                    raise TimeoutError(f"no answer in {self._timeout_s:.0f} s")
                oldest.value = worker.conn.recv()
            except (EOFError, OSError, TimeoutError) as exc:
                self._replace(worker, exc)
                break
            worker.waiting.popleft()
        return job.value  # type: ignore[return-value]

    def _replace(self, worker: _Worker, why: BaseException) -> None:
        """Fail what the worker holds and start a new one in its place."""
        log.error("hub: a preparing process failed (%s); starting a new one", why or type(why).__name__)
        worker.alive = False
        for job in worker.waiting:
            job.value = None
        worker.waiting.clear()
        self._stop(worker, patient_s=0.0)  # dead, or stuck on a job: no waiting for a goodbye
        self._workers[self._workers.index(worker)] = self._start()
        self.restarts += 1

    def close(self) -> None:
        for worker in self._workers:
            self._stop(worker)

    @staticmethod
    def _stop(worker: _Worker, patient_s: float = 2.0) -> None:
        """End a worker: its pipe closes, and it is given `patient_s` to end by itself before a kill."""
        worker.outbox.put(None)
        with contextlib.suppress(OSError):
            worker.conn.close()
        worker.process.join(patient_s)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(2)
        worker.feeder.join(2)


def _feed(conn: Connection, outbox: queue.SimpleQueue[object]) -> None:
    """Write jobs to a worker's pipe (a big one blocks here, not the writer, until the worker reads)."""
    while (item := outbox.get()) is not None:
        try:
            conn.send(item)
        except (OSError, ValueError):  # the worker is gone; its jobs fail when their answer is awaited
            return


def _serve(conn: Connection, parent: int) -> None:
    """A preparing process: jobs in, prepared messages out, until the pipe closes."""
    worker_init(parent)
    while True:
        try:
            messages, keys = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(prepare_in_worker(messages, keys))

"""concurrent.futures and asyncio over cluster jobs: Executor, as_completed, await and gather.

``Executor(backend=..., **job_keywords)`` is a :class:`concurrent.futures.Executor` whose futures are
submitted Jobs (:class:`FutureJob`). Every wait here rides the backend's one shared poller
(:func:`cluster_core.queue.tracker`): one scheduler query per poll interval for all the jobs of the
process, whatever their number, and no thread per job. A blocking wait polls from the waiting thread;
in asyncio, one poll task per (event loop, backend) refreshes the tracker and wakes every awaiting
coroutine, the scheduler query itself running in the loop's default executor so that a slow ``squeue``
never blocks the loop.

These futures are not ``concurrent.futures.Future`` objects: the standard library's
``concurrent.futures.wait`` and ``as_completed``, ``asyncio.wrap_future`` and ``loop.run_in_executor(
executor, ...)`` read that class's private state and do not work with them. Use :func:`as_completed`,
:func:`cluster_core.wait`, :func:`wait_async` and :func:`gather` from here instead.

Progress: ``progress=True`` shows the same one-line display as ``cluster_core.wait`` (queue.py's
``_show_progress``: done / total, seconds, a count per state, redrawn in place on stderr; by default on a
terminal only for ``Executor.shutdown``, as for ``wait``, and off for ``as_completed`` and ``gather``,
whose callers' own code runs between the results). No tqdm or rich: the line already says what a bar
would (a bar adds a drawing, not a fact), the core stays dependency-free, and one display serves the
CLI, ``wait`` and these waits alike.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Iterable, Iterator, Optional, Sequence, TypeVar, Union

from . import config, plugins
from .errors import JobError, JobFailedError, OptionError, SchedulerError, WaitTimeout
from .job import Job, _Outcome, _single, find_jobs
from .job import cancel as cancel_jobs
from .job import map as map_jobs
from .keywords import check_arguments
from .queue import Outage, _progress_wanted, _show_progress, next_pause, tracker
from .records import State

if TYPE_CHECKING:
    import asyncio

    from .queue import Tracker
    from .records import QueueJob

_T = TypeVar("_T")

log = logging.getLogger(__name__)

_DEPENDS_KEYS = ("depends", "dependencies", "dependency", "afterok")

# What a Future's result(timeout) raises: WaitTimeout, also a concurrent.futures.TimeoutError (the builtin
# TimeoutError from Python 3.11 on, a class of its own before).
if issubclass(WaitTimeout, concurrent.futures.TimeoutError):
    _Timeout = WaitTimeout
else:  # pragma: no cover - Python < 3.11
    class _Timeout(WaitTimeout, concurrent.futures.TimeoutError):  # type: ignore[no-redef]
        """WaitTimeout that ``except concurrent.futures.TimeoutError`` catches too."""


class JobCancelledError(JobFailedError, concurrent.futures.CancelledError):
    """The job was cancelled before it gave a result: a JobFailedError, and the
    ``concurrent.futures.CancelledError`` a Future's ``result()`` raises."""


class _Answer(int):
    """A yes or no that can also be called: ``job.done`` (a Job's property) and ``job.done()`` (a Future's
    method) both work. Compare it with ``==`` or use its truth; ``is True`` does not hold."""

    def __new__(cls, value: Any) -> "_Answer":
        return super().__new__(cls, bool(value))

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))

    __str__ = __repr__


# --- done callbacks ---------------------------------------------------------------------------------

_callbacks_lock = threading.Lock()
# backend -> tracked key -> the future whose done callbacks have not run yet
_with_callbacks: dict[str, dict[str, "FutureJob"]] = {}


def _run_callbacks(backend_name: str) -> None:
    """Run the done callbacks of this backend's futures that the tracker now knows have ended."""
    with _callbacks_lock:
        waiting = list(_with_callbacks.get(backend_name, {}).values())
    if not waiting:
        return
    track = tracker(backend_name)
    for future in waiting:
        key = future._track_key
        if key is not None and track.is_done(key):
            future._invoke_callbacks()


# --- the futures ------------------------------------------------------------------------------------

class FutureJob(Job):
    """A submitted Job that is also a future (``result``, ``exception``, ``done()``, ``running()``,
    ``cancelled()``, ``cancel()``, ``add_done_callback``) and can be awaited in asyncio.

    ``done`` and ``running`` answer both as a Job's properties and as a Future's methods (``job.done`` and
    ``job.done()``); ``running`` here means started and not ended (the Future's meaning; a plain Job's
    fyrd-style ``running`` also counts a queued job). ``cancel()`` cancels a queued or a running job (a
    cluster job, unlike a thread, can be stopped) and returns False only when it had already ended. Done
    callbacks run in whichever thread notices the end: one waiting on it (``result``, ``exception``,
    ``wait``, ``done()``), :func:`as_completed`, ``Executor.shutdown``, or an event loop's poller; keep
    them short. A callback added to a job known to have ended runs at once.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._callbacks: list[Callable[["FutureJob"], Any]] = []
        self._cancel_sent = False
        self._error: Optional[BaseException] = None

    # -- state ---------------------------------------------------------------------------------------

    @property
    def done(self) -> _Answer:  # type: ignore[override]
        """True once the job has ended (asks the scheduler at most once per poll interval)."""
        ended = self.submitted and bool(super().done)
        if ended:
            self._invoke_callbacks()
        return _Answer(ended)

    @property
    def running(self) -> _Answer:  # type: ignore[override]
        """True while the job runs: started, not ended (a Future's meaning)."""
        return _Answer(self.submitted and self.state in (State.RUNNING, State.SUSPENDED, State.COMPLETING))

    def cancelled(self) -> bool:
        """True when the job ended cancelled, or this future's ``cancel()`` was sent and it has not ended."""
        if not self.submitted:
            return False
        if self.done:
            rec = self.record
            return rec is not None and rec.state is State.CANCELLED
        return self._cancel_sent

    def cancel(self) -> bool:  # type: ignore[override]
        """Cancel the job, queued or running; False when it had already ended (True if that end was a
        cancellation), as a Future's ``cancel``."""
        if self.submitted and self.done:
            return self.cancelled()
        super().cancel()
        self._cancel_sent = True
        return True

    def wait(self, timeout: Optional[float] = None, progress: Optional[bool] = None) -> bool:
        """Block until the job ends (no scheduler query when its end is already known); True when it
        completed with exit code 0."""
        if self.tasks:  # an array: its tasks are what is tracked
            return super().wait(timeout=timeout, progress=progress)
        if not (self.submitted and self._tracker().is_done(self._track_key)):
            super().wait(timeout=timeout, progress=progress)
        self._invoke_callbacks()
        rec = self.record
        return rec is not None and rec.state is State.COMPLETED and self.exitcode in (0, None)

    # -- results -------------------------------------------------------------------------------------

    def result(self, timeout: Optional[float] = None) -> Any:
        """The function's return value (a shell job's stdout), waiting up to ``timeout`` seconds
        (WaitTimeout, a TimeoutError, after that; the job goes on running). The function's own exception
        is raised with the remote traceback as its cause; a cancelled job raises JobCancelledError."""
        self._wait_end(timeout)
        if self._error is not None:
            raise self._error
        try:
            return _ended_value(self)
        except Exception as exc:
            self._error = exc
            raise

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The exception the job ended with (None when it succeeded), waiting as :meth:`result`; a
        cancelled job raises JobCancelledError, as a Future's ``exception`` raises CancelledError."""
        try:
            self.result(timeout)
        except JobCancelledError:
            raise
        except _Timeout:
            if not self._tracker().is_done(self._track_key):
                raise
            return self._error
        except Exception as exc:
            return exc
        return None

    def add_done_callback(self, fn: Callable[["FutureJob"], Any]) -> None:
        """Call ``fn(job)`` once the job has ended (at once when it already has)."""
        key = self._need_key()
        with _callbacks_lock:
            self._callbacks.append(fn)
            _with_callbacks.setdefault(self.backend.name, {})[key] = self
        if self.done:
            self._invoke_callbacks()

    def _wait_end(self, timeout: Optional[float]) -> None:
        try:
            self.wait(timeout=timeout, progress=False)
        except WaitTimeout as exc:
            if _Timeout is WaitTimeout:
                raise
            raise _Timeout(str(exc), exc.pending) from None  # pragma: no cover - Python < 3.11

    def _invoke_callbacks(self) -> None:
        with _callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
            key = self._track_key
            if self.submitted and key is not None:
                _with_callbacks.get(self.backend.name, {}).pop(key, None)
        for fn in callbacks:
            try:
                fn(self)
            except Exception:
                log.exception("exception calling callback for %r", self)


# --- the executor -----------------------------------------------------------------------------------

class Executor(concurrent.futures.Executor):
    """Runs calls as cluster jobs: ``Executor(backend=None, profile=None, **job_keywords)``.

    Every job gets the keywords (checked now: a bad one raises OptionError here, not at the first
    submission). ``submit`` returns a :class:`FutureJob`; ``map`` submits one array (one job per task on a
    backend without arrays). ``shutdown`` waits for, or with ``cancel_futures`` cancels, the jobs still
    queued. See the module docstring for what the standard library's ``wait``/``as_completed`` cannot do
    with these futures.
    """

    def __init__(self, backend: Optional[str] = None, *, profile: Optional[str] = None, **job_keywords: Any):
        checked = check_arguments({k: v for k, v in job_keywords.items() if k not in _DEPENDS_KEYS})
        if "array" in checked:
            raise OptionError("an Executor submits one job per call (map makes the arrays itself); drop array=",
                              keyword="array")
        config.merged_keywords(checked, profile=profile)  # a profile that does not exist: ConfigError now
        self._backend = plugins.get_backend(backend).name
        self._profile = profile
        self._keywords = dict(job_keywords)
        self._jobs: list[_Outcome] = []
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def jobs(self) -> list[_Outcome]:
        """Every job (and map task) this executor submitted, in order."""
        with self._lock:
            return list(self._jobs)

    # a FutureJob, not a concurrent.futures.Future (see the module docstring); fn may be a command string
    def submit(self, fn: Union[Callable[..., Any], str], /,  # type: ignore[override]
               *args: Any, **kwargs: Any) -> FutureJob:
        """Submit ``fn(*args, **kwargs)`` as a job; returns the submitted job (a future). ``fn`` may also
        be a shell command string (no arguments), whose result is its stdout."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            job = FutureJob(fn, args, kwargs, backend=self._backend, profile=self._profile, **self._keywords)
            job.submit()
            self._jobs.append(job)
        return job

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: int = 1) -> Iterator[Any]:
        """``fn`` over the zipped iterables as one array submission; the results in order.

        Each result is waited for when its turn comes; the first failure is raised then, and ``timeout``
        (seconds from this call) raises WaitTimeout. Either way, or when the iterator is closed early (or
        interrupted), the tasks not yet ended are cancelled, as the standard library's ``map`` cancels its
        pending calls. ``chunksize`` is accepted and changes nothing: the whole map is one submission.
        """
        if not callable(fn):
            raise OptionError(f"map() runs a function, not {type(fn).__name__}", keyword="fn")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        start = time.monotonic()
        calls = list(zip(*iterables))
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            tasks = map_jobs(fn, calls, star=True, backend=self._backend, profile=self._profile, **self._keywords)
            self._jobs.extend(tasks)
        watch = _Watch(tasks, timeout, False, fate="the unfinished ones are cancelled, as concurrent.futures' map does",
                       start=start)
        return _in_order(watch)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False,
                 progress: Optional[bool] = None) -> None:
        """No more submissions (RuntimeError after this). ``cancel_futures`` cancels this executor's jobs
        still queued (running ones go on, as in the standard library); ``wait`` blocks until every job it
        submitted has ended (``progress``: the one-line display; None shows it when stderr is a terminal,
        as ``wait`` does). Ctrl-C stops the wait and leaves the jobs running."""
        with self._lock:
            self._shutdown = True
            jobs = list(self._jobs)
        if not jobs:
            return
        if cancel_futures:
            _cancel_queued(jobs)
        if wait:
            watch = _Watch(jobs, None, progress)
            try:
                for _ in _completing(watch):
                    pass
            finally:
                watch.close()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"<Executor {self._backend} {len(self._jobs)} jobs, {state}>"


def _cancel_queued(jobs: Sequence[_Outcome]) -> None:
    """Cancel the jobs the scheduler has not started (one fresh query and one cancel call per backend)."""
    units = [u for item in jobs for u in _units_of(item)]
    for name in {u.backend.name for u in units}:
        tracker(name).refresh(force=True)
    queued = []
    for u in units:
        track = u._tracker()
        rec = track.record(u._track_key)
        if not track.is_done(u._track_key) and (rec is None or rec.state.queued):
            queued.append(u)
    if queued:
        log.info("cancelling %d queued jobs", len(queued))
        cancel_jobs(queued)
        for u in queued:
            if isinstance(u, FutureJob):
                u._cancel_sent = True


# --- reading what ended -----------------------------------------------------------------------------

def _units_of(item: _Outcome) -> list[_Outcome]:
    """What is tracked of a job: an array's tasks, else the job or task itself."""
    return list(item.tasks) if isinstance(item, Job) and item.tasks else [item]


def _items(jobs: Any, backend: Optional[str] = None) -> list[_Outcome]:
    """Jobs, tasks and ids as Jobs and Tasks, in order; ids are found through their records, and a Job
    not yet submitted is submitted first (as ``wait`` does)."""
    items = [jobs] if _single(jobs) else list(jobs)
    if any(not isinstance(i, _Outcome) for i in items):
        items = find_jobs(items, backend)
    for item in items:
        if isinstance(item, Job) and not item.submitted:
            log.info("submitting %s first: it is waited for", item.name)
            item.submit()
    return items


def _ended_value(item: _Outcome) -> Any:
    """``item.get()`` for a job this process knows has ended, without asking the scheduler again (get()'s
    wait asks once more whenever other jobs of the backend are still unfinished)."""
    if isinstance(item, Job) and (item.options.get("clean_files") or item.options.get("clean_outputs")):
        return item.get()  # get() deletes the files once it has read them
    if not (isinstance(item, Job) and item.tasks):
        return _unit_value(item)
    values, errors = _values(item.tasks, return_exceptions=False)
    if errors:
        raise _first_error(errors, len(item.tasks), "tasks")
    return values


def _unit_value(unit: _Outcome) -> Any:
    if getattr(unit, "_result_loaded", False):
        return unit._result
    rec = unit.record
    try:
        if unit.is_function:
            value = unit._load_result()
        else:
            if rec is None or rec.state is not State.COMPLETED:
                raise unit._failure()
            value = unit.stdout
            if value is None:
                raise JobError(f"job {unit.id} ({unit.name}) on {unit.backend.name} completed, but its output "
                               f"file {unit.outfile or '(unknown)'} cannot be read")
    except JobFailedError as exc:
        if exc.job is unit and rec is not None and rec.state is State.CANCELLED:
            raise JobCancelledError(str(exc), job=unit) from None
        raise
    unit._result, unit._result_loaded = value, True
    return value


def _values(items: Sequence[_Outcome], return_exceptions: bool) -> tuple[list[Any], list[tuple[Any, BaseException]]]:
    values: list[Any] = []
    errors: list[tuple[Any, BaseException]] = []
    for item in items:
        try:
            values.append(_ended_value(item))
        except Exception as exc:
            values.append(exc)
            if not return_exceptions:
                errors.append((item, exc))
    return values, errors


def _first_error(errors: list[tuple[Any, BaseException]], total: int, what: str = "jobs") -> BaseException:
    first = errors[0][1]
    if total > 1 and hasattr(first, "add_note"):
        failed = ", ".join(str(j.id) for j, _ in errors[:10]) + (" ..." if len(errors) > 10 else "")
        first.add_note(f"{len(errors)} of {total} {what} failed ({failed}); "
                       "return_exceptions=True returns every result and error")
    return first


def _left_message(left: Sequence[_Outcome], total: int, timeout: float, fate: str) -> str:
    ids = ", ".join(str(i.id) for i in left[:5])
    return f"{len(left)} of {total} jobs still not finished after {timeout:g} s (e.g. {ids}); {fate}"


def _interrupted(exc: BaseException, left: Sequence[_Outcome]) -> None:
    ids = ", ".join(str(u.id) for u in left[:20]) + (" ..." if len(left) > 20 else "")
    message = (f"interrupted: {len(left)} jobs go on running ({ids}); wait for them again or cancel them with "
               "`cluster cancel`" if left else "interrupted: every job had ended")
    log.warning("%s", message)
    if hasattr(exc, "add_note"):
        exc.add_note(message)


class _Records:
    """What ``_show_progress`` reads (``record(i)``) for units of any backends, numbered 0..n-1."""

    def __init__(self, units: Sequence[_Outcome]):
        self.units = units

    def record(self, index: int) -> Optional[QueueJob]:
        unit = self.units[index]
        return tracker(unit.backend.name).record(unit._track_key)


# --- waiting from a thread --------------------------------------------------------------------------

class _Watch:
    """One waiting thread's polls over some jobs, of any backends: each backend's tracker is refreshed
    at once the first time, then at most once per its poll interval, paced as ``Tracker.wait`` paces
    (``next_pause``); a scheduler that cannot be reached is waited out up to ``core.outage_limit``."""

    def __init__(self, items: Sequence[_Outcome], timeout: Optional[float], progress: Optional[bool],
                 fate: str = "they go on running", start: Optional[float] = None):
        self.items = list(items)
        self.keys = {id(item): [(u.backend.name, u._need_key()) for u in _units_of(item)] for item in self.items}
        self.units = [u for item in self.items for u in _units_of(item)]
        self.backends = sorted({name for pairs in self.keys.values() for name, _ in pairs})
        self.base = min((tracker(b).backend.info.poll_interval for b in self.backends), default=1.0)
        self.pause = self.base
        self.start = time.monotonic() if start is None else start  # what the timeout counts from
        self.timeout = timeout
        self.deadline = None if timeout is None else self.start + timeout
        self.fate = fate
        self.show = _progress_wanted(progress)
        self.polled = False
        self.left: Optional[int] = None
        self.outage: dict[str, Outage] = {}

    def ended(self, item: _Outcome) -> bool:
        return all(tracker(name).is_done(key) for name, key in self.keys[id(item)])

    def step(self, left: Sequence[_Outcome]) -> None:
        """Pause (not before the first poll), then poll; WaitTimeout naming ``left`` once time is up."""
        if self.polled:
            now = time.monotonic()
            if self.deadline is not None and self.timeout is not None and now >= self.deadline:
                raise _Timeout(_left_message(left, len(self.items), self.timeout, self.fate),
                               [str(i.id) for i in left])
            pause = self.pause if self.deadline is None else min(self.pause, self.deadline - now)
            time.sleep(max(0.0, pause))
        self.poll()

    def poll(self) -> None:
        for name in self.backends:
            track = tracker(name)
            outage = self.outage.setdefault(name, Outage(name))
            try:
                track.refresh()  # never two queries closer than the poll interval
            except SchedulerError as exc:
                outage.failed(exc)
            else:
                outage.answered()
            _run_callbacks(name)
        self.polled = True
        left = sum(1 for u in self.units if not u._tracker().is_done(u._track_key))
        elapsed = time.monotonic() - self.start
        if self.left is not None:
            self.pause = next_pause(self.pause, self.base, elapsed, left < self.left)
        self.left = left
        if self.show:
            _show_progress(_Records(self.units), list(range(len(self.units))), left, elapsed)

    def close(self) -> None:
        if self.show and self.polled:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.show = False


def _completing(watch: _Watch) -> Iterator[_Outcome]:
    left = list(watch.items)
    try:
        while True:
            ended = [i for i in left if watch.ended(i)]
            if ended:
                gone = {id(i) for i in ended}
                left = [i for i in left if id(i) not in gone]
            yield from ended
            if not left:
                return
            watch.step(left)
    except KeyboardInterrupt as exc:
        _interrupted(exc, [u for i in left for u in _units_of(i) if not u._tracker().is_done(u._track_key)])
        raise


def _in_order(watch: _Watch) -> Iterator[Any]:
    position = 0
    try:
        for position, item in enumerate(watch.items):
            while not watch.ended(item):
                watch.step([i for i in watch.items[position:] if not watch.ended(i)])
            yield _ended_value(item)
        position = len(watch.items)
    finally:
        watch.close()
        rest = [i for i in watch.items[position:] if not watch.ended(i)]
        if rest:
            log.info("cancelling %d map tasks not yet ended", len(rest))
            cancel_jobs(rest)


def as_completed(jobs: Any, timeout: Optional[float] = None, *, backend: Optional[str] = None,
                 progress: Optional[bool] = False) -> Iterator[_Outcome]:
    """Yield jobs (Jobs, Tasks, or the Jobs of ids) as each one ends, those already ended first; an array
    Job when all its tasks have. Every backend is asked once per poll interval for all of them.

    ``timeout`` (seconds from this call) raises WaitTimeout naming how many are left; they go on
    running, as they do after Ctrl-C. ``progress`` shows the one-line display (off by default: the
    caller's own code runs between the yields). Each job is yielded once, however often it is given.
    """
    items: list[_Outcome] = []
    seen: set[int] = set()
    for item in _items(jobs, backend):
        if id(item) not in seen:
            seen.add(id(item))
            items.append(item)
    watch = _Watch(items, timeout, progress)
    return _closing(_completing(watch), watch)


def _closing(generator: Iterator[_T], watch: _Watch) -> Iterator[_T]:
    try:
        yield from generator
    finally:
        watch.close()


# --- asyncio ----------------------------------------------------------------------------------------

class _LoopPoller:
    """The poll task of one (event loop, backend): refreshes the tracker once per interval while any job
    is awaited, and resolves the waiting futures of those that ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop, backend_name: str):
        self.loop = loop
        self.backend = backend_name
        # tracked key -> asyncio futures resolved when it ends
        self.waiting: dict[str, list[asyncio.Future[None]]] = {}
        self.task: Optional[asyncio.Task[None]] = None
        self.nap: Optional[asyncio.Future[None]] = None  # the future the poll task sleeps on; set early to wake it
        self.pause: Optional[float] = None

    def ended(self, key: str) -> asyncio.Future[None]:
        """An asyncio future resolved (None) when the job with this tracked key has ended."""
        future = self.loop.create_future()
        if tracker(self.backend).is_done(key):
            future.set_result(None)
            return future
        self.waiting.setdefault(key, []).append(future)
        self.pause = None  # a new job: poll at the base pace again, from now
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())
        elif self.nap is not None and not self.nap.done():
            self.nap.set_result(None)
        return future

    async def _run(self) -> None:
        start = time.monotonic()
        outage = Outage(self.backend)
        try:
            while True:
                self._prune()
                if not self.waiting:
                    return
                track = tracker(self.backend)
                base = track.backend.info.poll_interval
                try:  # never forced: however often awaits come and go, one query per interval at most
                    await self.loop.run_in_executor(None, track.refresh)
                except SchedulerError as exc:
                    outage.failed(exc)
                else:
                    outage.answered()
                progressed = self._resolve(track)
                _run_callbacks(self.backend)
                if not self.waiting:
                    return
                if self.pause is None:
                    self.pause, start = base, time.monotonic()
                self.pause = next_pause(self.pause, base, time.monotonic() - start, progressed)
                await self._sleep(self.pause)
        except Exception as exc:
            self._fail(exc)
        finally:
            self.nap = None

    async def _sleep(self, seconds: float) -> None:
        self.nap = self.loop.create_future()
        handle = self.loop.call_later(seconds, _resolve_future, self.nap)
        try:
            await self.nap
        finally:
            handle.cancel()
            self.nap = None

    def _prune(self) -> None:
        for key in list(self.waiting):
            live = [f for f in self.waiting[key] if not f.done()]
            if live:
                self.waiting[key] = live
            else:
                del self.waiting[key]

    def _resolve(self, track: Tracker) -> bool:
        progressed = False
        for key in list(self.waiting):
            if track.is_done(key):
                for future in self.waiting.pop(key):
                    _resolve_future(future)
                progressed = True
        return progressed

    def _fail(self, exc: BaseException) -> None:
        waiting, self.waiting = self.waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(exc)


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _LoopPoller]] = weakref.WeakKeyDictionary()
_pollers_lock = threading.Lock()


def _loop_poller(backend_name: str) -> _LoopPoller:
    import asyncio
    loop = asyncio.get_running_loop()
    with _pollers_lock:
        per_loop = _pollers.get(loop)
        if per_loop is None:
            per_loop = _pollers[loop] = {}
        poller = per_loop.get(backend_name)
        if poller is None:
            poller = per_loop[backend_name] = _LoopPoller(loop, backend_name)
    return poller


async def _resolved(jobs: Any, backend: Optional[str]) -> list[_Outcome]:
    """``_items`` off the event loop when it has to ask anybody (ids, jobs to submit)."""
    items = [jobs] if _single(jobs) else list(jobs)
    if all(isinstance(i, _Outcome) and i.submitted for i in items):
        return items
    import asyncio
    return await asyncio.get_running_loop().run_in_executor(None, _items, items, backend)


async def _ends(items: Sequence[_Outcome], timeout: Optional[float], progress: Optional[bool]) -> None:
    """Await the end of every unit of the items through the loop's pollers; WaitTimeout after ``timeout``
    seconds (the jobs go on running)."""
    import asyncio
    units = [u for item in items for u in _units_of(item)]
    futures = [_loop_poller(u.backend.name).ended(u._need_key()) for u in units]
    show = _progress_wanted(progress)
    start = time.monotonic()
    redraw = max(0.1, min((tracker(u.backend.name).backend.info.poll_interval for u in units), default=1.0))
    pending = {f for f in futures if not f.done()}
    try:
        while pending:
            remaining = None if timeout is None else timeout - (time.monotonic() - start)
            if timeout is not None and remaining is not None and remaining <= 0:
                left = [u for u, f in zip(units, futures) if not f.done()]
                raise _Timeout(_left_message(left, len(units), timeout, "they go on running"),
                               [str(u.id) for u in left])
            step = redraw if show else remaining
            if show and remaining is not None:
                step = min(redraw, remaining)  # show: step is redraw
            done, pending = await asyncio.wait(pending, timeout=step)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
            if show and pending:
                _show_progress(_Records(units), list(range(len(units))), len(pending), time.monotonic() - start)
        if show:
            _show_progress(_Records(units), list(range(len(units))), 0, time.monotonic() - start)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()  # no longer awaited: the poller drops it
            elif not future.cancelled():
                future.exception()  # retrieved: one scheduler error failed them all
        if show:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def wait_async(jobs: Any, timeout: Optional[float] = None, *, backend: Optional[str] = None,
                     progress: Optional[bool] = False) -> bool:
    """``await wait_async(jobs)``: ``cluster_core.wait`` for asyncio (Jobs, Tasks or ids); True when every
    job completed. All the awaits of an event loop share one poll task per backend."""
    items = await _resolved(jobs, backend)
    await _ends(items, timeout, progress)
    return all((u.record is not None and u.record.state is State.COMPLETED)
               for item in items for u in _units_of(item))


async def gather(jobs: Any, return_exceptions: bool = False, *, timeout: Optional[float] = None,
                 backend: Optional[str] = None, progress: Optional[bool] = False) -> list[Any]:
    """``await gather(jobs)``: every job's result, in order, once all have ended (an array Job gives the
    list of its tasks' results). As ``cluster_core.get``, a failure is raised once every job has ended
    (saying how many failed), and with ``return_exceptions`` each error takes its job's place instead.
    Results are read in the loop's default executor, so a slow file system does not block the loop."""
    import asyncio
    items = await _resolved(jobs, backend)
    await _ends(items, timeout, progress)
    values, errors = await asyncio.get_running_loop().run_in_executor(None, _values, items, return_exceptions)
    if errors:
        raise _first_error(errors, len(items))
    return values


def awaitable(job: Any) -> Coroutine[Any, Any, Any]:
    """``await awaitable(job)``: the job's result (its error raised), waiting on the event loop's shared
    poller. What ``await job`` does."""
    return _result_async(job)


async def _result_async(job: Any) -> Any:
    import asyncio
    items = await _resolved(job, None)
    await _ends(items, None, False)
    return await asyncio.get_running_loop().run_in_executor(None, _ended_value, items[0])


__all__ = ["Executor", "FutureJob", "JobCancelledError", "as_completed", "awaitable", "gather", "wait_async"]

"""Everything this process remembers between calls, in one object that tests replace.

The plugin manager and the backends it chose, the trackers that poll each backend, the warnings already
given, the directories already made and the parsed config file: state that used to sit in module globals
of five modules. :func:`current` is the session every call uses; :func:`new_session` (or the context
manager :func:`fresh`) starts an empty one, as a new process would have. Stdlib only: it is imported by
the core's lowest layers.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:  # for the annotations only: this module stays stdlib-only at run time
    import pluggy

    from .entrypoints import EntryPoint
    from .plugins import Backend
    from .queue import Tracker


class Session:
    """The per-process state of the core. Fields are read and written by their owning modules only
    (plugins, queue, options' rendering, registry, config); others go through those modules."""

    def __init__(self) -> None:
        # plugins.py: the manager (None until first use), why plugins failed to load, Backend objects,
        # the auto-detected backend's name
        self.plugin_lock = threading.RLock()
        self.plugin_manager: Optional[pluggy.PluginManager] = None
        self.entry_points: Optional[list[EntryPoint]] = None  # the installed backends, scanned once
        self.all_loaded = False  # every entry point loaded (else only the backends named so far)
        self.load_errors: dict[str, str] = {}
        self.distributions: dict[str, str] = {}
        self.backends: dict[str, Backend] = {}
        self.detected: Optional[str] = None
        # queue.py: one Tracker per backend name
        self.trackers_lock = threading.Lock()
        self.trackers: dict[str, Tracker] = {}
        # rendering.py: (backend, keyword) pairs already warned about as ignored
        self.warned: set[tuple[str, str]] = set()
        # registry.py: record directories known to exist
        self.made_dirs: set[str] = set()
        # config.py: the parsed config file and the (path, mtime, size) it was parsed from
        self.config_cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"<Session backends={sorted(self.backends)} trackers={sorted(self.trackers)} "
                f"plugins={'loaded' if self.plugin_manager is not None else 'not loaded'}>")


_current = Session()
_swap_lock = threading.Lock()


def current() -> Session:
    """The session every call of the core uses now."""
    return _current


def new_session() -> Session:
    """Start an empty session (as a new process would) and make it the current one; returns it."""
    global _current
    with _swap_lock:
        _current = Session()
        return _current


def use(session: Session) -> Session:
    """Make ``session`` the current one; returns the one it replaces."""
    global _current
    with _swap_lock:
        old, _current = _current, session
        return old


@contextlib.contextmanager
def fresh() -> Iterator[Session]:
    """A new empty session for the block (a test), the previous one restored afterwards."""
    session = Session()
    old = use(session)
    try:
        yield session
    finally:
        use(old)

"""The config file and named profiles of job keywords.

One INI file (``$CLUSTER_CORE_CONFIG``, else ``<user config dir>/cluster-core/config.ini``). Plain
settings live in sections and are addressed as ``section.key`` (``core.backend``, ``local.threads``,
``commands.sbatch``); profiles live in sections ``[profile NAME]`` holding job keywords. A profile named
``default`` applies to every submission, under the profile asked for and under explicit keywords.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union, overload


from . import session
from .casts import format_time
from .errors import ConfigError, OptionError
from .keywords import canonical_name, check_arguments, defaults, get_spec

ENV_CONFIG = "CLUSTER_CORE_CONFIG"
PROFILE_PREFIX = "profile "
_lock = threading.RLock()  # one writer of the config file at a time in this process


def config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return _env_path(env, os.environ.get("HOME"))
    return _platform_path(os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _env_path(env: str, home: Optional[str]) -> Path:
    """$CLUSTER_CORE_CONFIG as a path (asked on every submission: built once per value)."""
    return Path(env).expanduser()


@functools.lru_cache(maxsize=8)
def _platform_path(xdg_config_home: Optional[str], home: Optional[str]) -> Path:
    """The per-user config file (platformdirs costs ~0.1 ms a call: once per environment it depends on)."""
    import platformdirs
    return Path(platformdirs.user_config_dir("cluster-core", appauthor=False)) / "config.ini"


def _read() -> configparser.ConfigParser:
    path = config_path()
    key: tuple[str, Optional[int], Optional[int]]
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        key = (str(path), None, None)
    state = session.current()
    with _lock:
        cache = state.config_cache
        if cache.get("key") == key:
            cached: configparser.ConfigParser = cache["parser"]
            return cached
        parser = configparser.ConfigParser(interpolation=None)
        if key[1] is not None:
            try:
                with open(path, encoding="utf-8") as fh:
                    parser.read_file(fh, source=str(path))
            except configparser.Error as exc:
                raise ConfigError(_describe(exc, path)) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}") from None
        cache.clear()  # profiles checked from the previous text go with it
        cache.update(key=key, parser=parser)
        return parser


def _describe(exc: configparser.Error, path: Path) -> str:
    line = getattr(exc, "lineno", None)
    if isinstance(exc, configparser.MissingSectionHeaderError):
        what = "a setting before any [section] header"
    elif isinstance(exc, configparser.DuplicateSectionError):
        what = f"section [{exc.section}] appears twice"
    elif isinstance(exc, configparser.DuplicateOptionError):
        what = f"{exc.option!r} appears twice in [{exc.section}]"
    elif isinstance(exc, configparser.ParsingError):
        line = exc.errors[0][0] if exc.errors else line
        what = f"cannot parse {exc.errors[0][1].strip()}" if exc.errors else "cannot parse"
    else:
        what = str(exc).splitlines()[0]
    where = f"{path}, line {line}" if line else str(path)
    return f"config file {where}: {what} (fix or delete the file)"


def _write(parser: configparser.ConfigParser) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # only when the config is written
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            parser.write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    state = session.current()
    with _lock:
        state.config_cache.clear()


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.strip().rpartition(".")
    section = section or "core"
    if not name or not re.fullmatch(r"[\w.-]+", name) or section.startswith(PROFILE_PREFIX.strip()):
        raise ConfigError(f"{key!r} is not a setting name; use section.key, e.g. core.backend")
    return section, name


# fyrd's [section] key settings, by what they are here: another setting, a job keyword whose default the
# ``default`` profile holds, or nothing (with the reason).
_FYRD_SETTINGS: dict[str, tuple[str, str]] = {
    "queue.queue_type": ("setting", "core.backend"),
    "queue.sbatch": ("setting", "commands.sbatch"),
    "queue.qsub": ("setting", "commands.qsub"),
    "jobs.scriptpath": ("keyword", "jobdir"),
    "jobs.outpath": ("keyword", "outpath"),
    "jobs.suffix": ("keyword", "suffix"),
    "jobs.clean_files": ("keyword", "clean_files"),
    "jobs.clean_outputs": ("keyword", "clean_outputs"),
    "local.max_jobs": ("setting", "local.threads"),
    "queue.max_jobs": ("none", "there is no default queue length; give submit(max_queue_len=N) or "
                               "Queue.wait_to_submit(N) where a job should wait for room"),
    "queue.sleep_len": ("none", "each backend polls at its own interval, one batched query for every job"),
    "queue.queue_update": ("none", "each backend polls at its own interval, one batched query for every job"),
    "queue.res_time": ("none", "a job is never given up on while its scheduler still knows it"),
    "queue.progressbar": ("none", "the progress line shows on a terminal (wait(progress=...) chooses)"),
    "queue.queue_maximums": ("none", "array sizes come from the scheduler's own configuration"),
    "jobs.file_block_time": ("none", "the end of a job is read from its exit file, written by the job itself"),
    "jobs.auto_submit": ("none", "get() and wait() submit a job that was not submitted yet"),
    "jobs.generic_python": ("none", "function jobs run with core.python, else the submitting interpreter"),
    "jobs.profile_file": ("none", "profiles are [profile NAME] sections of this config file"),
    "local.server_uri": ("none", "the local runner is found through its state directory"),
    "local.local_clean_days": ("none", "see `cluster clean --older-than`"),
}
_FYRD_SECTIONS = frozenset({"queue", "jobs", "notify"})


def _setting_name(section: Optional[str], key: Optional[str]) -> str:
    """``section.key`` from our form ("core.backend", or a bare "backend") or fyrd's (section, key)."""
    if not isinstance(section, str) or (key is not None and not isinstance(key, str)):
        raise ConfigError(f"a setting is named by text (section.key), not {type(section).__name__}")
    name = f"{section.strip()}.{key.strip()}" if key is not None else section.strip()
    return name if "." in name else f"core.{name}"


def _translate(name: str) -> tuple[str, str]:
    """Where a fyrd setting lives here: ("setting", "section.key") or ("keyword", job keyword); a fyrd
    setting with no counterpart is a ConfigError that says why."""
    if name in _FYRD_SETTINGS:
        kind, target = _FYRD_SETTINGS[name]
        if kind == "none":
            raise ConfigError(f"{name} is a fyrd setting with no counterpart in cluster-core: {target}")
        return kind, target
    if name.split(".")[0] in _FYRD_SECTIONS:
        raise ConfigError(f"{name} is a fyrd setting with no counterpart in cluster-core"
                          + ("; e-mail notifications are the email= and notify= job keywords"
                             if name.startswith("notify.") else ""))
    if name.startswith("core."):
        known = sorted(CORE_SETTINGS)
        if name[5:] not in CORE_SETTINGS:
            import difflib
            close = difflib.get_close_matches(name[5:], known, n=2)
            hint = f"; did you mean {' or '.join('core.' + c for c in close)}?" if close else \
                f"; core settings: {', '.join(known)}"
            raise ConfigError(f"{name}: no such setting{hint}")
    return "setting", name


#: The core's own settings (section ``core``); plugins own their sections (``local.threads``, ...).
CORE_SETTINGS = {
    "backend": "the backend used when none is named (default: detected)",
    "jobdir": "where job files go (default: ./cluster_jobs)",
    "python": "the interpreter that runs function jobs on the nodes (default: the submitting one)",
    "log_level": "the console log level of the CLI and logme.setup()",
    "registry": "the directory of job records (default: the user state directory)",
    "outage_limit": "seconds a wait rides out an unanswering scheduler (default 600)",
    "check_workdir": "false to submit jobs whose workdir does not exist here (nodes that see other paths)",
    "strict": "true to refuse a job keyword the backend cannot honour (default: a warning names it)",
}


def get_option(section: Optional[str] = None, key: Optional[str] = None, default: Optional[Any] = None) -> Any:
    """A setting: ``get_option("core.backend")`` (a bare key means ``core.key``), or fyrd's form
    ``get_option("queue", "queue_type")``; ``default`` when it is unset. ``get_option("local")`` (a section
    name alone) returns the section as a dict. A core or fyrd setting that does not exist is a
    ConfigError naming it.

    For compatibility with this library's earlier form, ``get_option("core.backend", "auto")`` (a dotted
    name and one more value) reads the second value as the default. With no arguments, every setting by
    section.
    """
    if section is None and key is None:
        return options()
    if key is not None and isinstance(section, str) and "." in section:
        key, default = None, key  # get_option("core.backend", "auto")
    if key is None and isinstance(section, str) and "." not in section:
        parser = _read()
        if parser.has_section(section) or section in _FYRD_SECTIONS:
            if section in _FYRD_SECTIONS and not parser.has_section(section):
                return {k.split(".", 1)[1]: _fyrd_get(k) for k in _FYRD_SETTINGS
                        if k.startswith(section + ".") and _FYRD_SETTINGS[k][0] != "none"}
            return dict(parser.items(section))
    kind, name = _translate(_setting_name(section, key))
    if kind == "keyword":
        value = _fyrd_get(name)
        return default if value is None else value
    section_name, option = _split(name)
    parser = _read()
    if parser.has_section(section_name) and parser.has_option(section_name, option):
        return parser.get(section_name, option)
    return default


def _fyrd_get(name: str) -> Any:
    kind, target = _translate(name) if "." in name else ("keyword", name)
    if kind == "setting":
        return get_option(target)
    profile = get_profile("default")
    return None if profile is None else getattr(profile, target)


def set_option(section: str, key: Any = None, value: Any = None) -> None:
    """Set a setting and save the file (None removes it): ``set_option("core.backend", "slurm")``, or
    fyrd's ``set_option("queue", "queue_type", "slurm")``. A fyrd job setting (``jobs.suffix``) sets that
    keyword in the ``default`` profile, which applies to every submission."""
    if value is None and key is not None and isinstance(section, str) and "." in section:
        key, value = None, key  # set_option("core.backend", "slurm")
    kind, name = _translate(_setting_name(section, key))
    if kind == "keyword":
        set_profile("default", {name: value})
        return
    section_name, option = _split(name)
    if value is not None and section_name == "core":
        _check_core_value(option, value)
    elif value is not None:
        _check_section_key(section_name, option)
    with _lock:
        parser = _copy(_read())
        if value is None:
            if parser.has_section(section_name):
                parser.remove_option(section_name, option)
        else:
            text = str(value)
            if "\n" in text:
                raise ConfigError(f"{name}: a setting cannot span lines")
            if not parser.has_section(section_name):
                parser.add_section(section_name)
            parser.set(section_name, option, text)
        _write(parser)


def _check_section_key(section: str, option: str) -> None:
    """A setting outside ``core``: ``commands.<program>``, or a key of an installed backend's section (which
    it lists through its settings hook); an unknown section or key is a ConfigError with the closest name."""
    import difflib

    from . import plugins
    if section == "commands" or option == "bin_dir":  # any backend's commands, installed yet or not
        return
    names = plugins.backend_names()
    if section not in names:
        sections = ["core", "commands", *names]
        close = difflib.get_close_matches(section, sections, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{section}.{option}: no settings section {section!r} (sections: {', '.join(sections)})"
                          f"{hint}")
    known = plugins.get_backend(section).settings()
    if known is not None and option not in known:
        close = difflib.get_close_matches(option, list(known), n=1)
        hint = f"; did you mean {section}.{close[0]}?" if close else ""
        raise ConfigError(f"{section}.{option}: the {section} backend has no such setting (it has: "
                          f"{', '.join(sorted(known))}){hint}")


def _check_core_value(option: str, value: Any) -> None:
    """A core setting's value, checked where it is given (not hours later by a job that cannot start)."""
    import difflib
    text = str(value).strip()
    if option == "backend":
        from .plugins import backend_names
        names = backend_names()
        if text not in names and text != "auto":
            close = difflib.get_close_matches(text, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"core.backend={text!r}: no such backend (installed: {', '.join(names)}; or 'auto' "
                              f"to detect one){hint}")
    elif option == "log_level":
        from .logme import LEVELS
        if text.lower() not in LEVELS:
            raise ConfigError(f"core.log_level={text!r}: expected one of debug, info, warn, error, critical")
    elif option == "outage_limit":
        try:
            ok = float(text) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"core.outage_limit={text!r}: expected a number of seconds, 0 or more")
    elif not text:
        raise ConfigError(f"core.{option}: give a value (`cluster config unset core.{option}` removes it)")


def delete(section: str, key: Optional[str] = None) -> None:
    """Delete a setting, or with no key a whole section (the seed's ``config_file.delete``)."""
    if key is None and "." not in section:
        with _lock:
            parser = _copy(_read())
            if parser.remove_section(section):
                _write(parser)
        return
    set_option(_setting_name(section, key), None)


def options() -> dict[str, dict[str, str]]:
    """Every plain setting, by section."""
    parser = _read()
    return {s: dict(parser.items(s)) for s in parser.sections() if not s.startswith(PROFILE_PREFIX)}


def _copy(parser: configparser.ConfigParser) -> configparser.ConfigParser:
    new = configparser.ConfigParser(interpolation=None)
    new.read_dict({s: dict(parser.items(s)) for s in parser.sections()})
    return new


# --- profiles ---------------------------------------------------------------------------------------

class Profile:
    """A named set of job keywords: ``Profile("big", {"cores": 16, "mem": "64G"})``.

    As in the seed, a profile is "a thin wrapper around a dict" with attribute access: ``profile.mem`` is
    the checked value (4096 for "4G": MB, ``time`` in seconds), by any of a keyword's names; setting an
    attribute checks the value. ``kwargs`` (fyrd: ``kwds``) holds the checked keywords by canonical name.
    :meth:`write` saves the profile to the config file, replacing what it held.
    """

    __slots__ = ("name", "kwargs")
    name: str
    kwargs: dict[str, Any]

    def __init__(self, name: str, kwds: Optional[Mapping[str, Any]] = None):
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
            raise ConfigError(f"profile name {name!r}: use letters, digits, '_', '.', '-'")
        object.__setattr__(self, "name", _profile_name(name))
        object.__setattr__(self, "kwargs", _checked(name, kwds or {}))

    @property
    def kwds(self) -> dict[str, Any]:
        return self.kwargs

    args = kwds  # fyrd's name

    def __len__(self) -> int:
        return len(self.kwargs)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self.kwargs.get(get_spec(key).name)
        except OptionError as exc:
            raise AttributeError(f"profile {self.name!r}: {exc}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("name", "kwargs"):
            object.__setattr__(self, key, _checked(self.name, value) if key == "kwargs" else value)
            return
        try:
            canonical = get_spec(key).name
        except OptionError as exc:
            raise AttributeError(f"profile {self.name!r}: {exc}") from None
        kwargs = {k: v for k, v in self.kwargs.items() if k != canonical}
        if value is not None:
            kwargs.update(_checked(self.name, {canonical: value}))
        object.__setattr__(self, "kwargs", kwargs)

    @classmethod
    def _of(cls, name: str, checked: Mapping[str, Any]) -> "Profile":
        """A profile of values already checked (checking is not idempotent: time=60 is minutes given,
        seconds checked)."""
        profile = cls(name)
        object.__setattr__(profile, "kwargs", dict(checked))
        return profile

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and (self.name, self.kwargs) == (other.name, other.kwargs)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {self.kwargs!r})"

    def text(self) -> dict[str, str]:
        """The keywords as the config file holds them."""
        return {key: _to_text(key, value) for key, value in self.kwargs.items()}

    def write(self) -> "Profile":
        """Save this profile to the config file (replacing a profile of the same name)."""
        _save_profile(self)
        return self


def _checked(name: str, kwds: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return check_arguments(kwds)
    except OptionError as exc:
        raise OptionError(f"profile {name!r}: {exc}", keyword=exc.keyword, value=exc.value) from None


def _profile_name(name: str) -> str:
    """fyrd's profile that applies to every job is "DEFAULT"; ours is "default"."""
    return "default" if name == "DEFAULT" else name


@overload
def get_profile(name: None = None, allow_none: bool = True) -> dict[str, Profile]: ...
@overload
def get_profile(name: str, allow_none: bool = True) -> Optional[Profile]: ...


def get_profile(name: Optional[str] = None, allow_none: bool = True) -> Union[dict[str, Profile], Optional[Profile]]:
    """The named Profile (None when it does not exist, a ConfigError without ``allow_none``); without a
    name, every profile by name."""
    if name is not None:
        name = _profile_name(name)
        if not allow_none and name not in get_profile():
            known = ", ".join(sorted(get_profile())) or "none"
            raise ConfigError(f"profile={name!r}: no such profile (known: {known})")
    parser = _read()
    if name is None:
        return {s[len(PROFILE_PREFIX):]: Profile(s[len(PROFILE_PREFIX):], dict(parser.items(s)))
                for s in parser.sections() if s.startswith(PROFILE_PREFIX)}
    section = PROFILE_PREFIX + name
    if not parser.has_section(section):
        return None
    # checked once per text of the config file (every Job asks for the default profile)
    checked = _checked_profiles(parser)
    if name not in checked:
        checked[name] = Profile(name, dict(parser.items(section))).kwargs
    return Profile._of(name, checked[name])


def _checked_profiles(parser: configparser.ConfigParser) -> dict[str, dict[str, Any]]:
    """The checked keywords of the profiles of ``parser`` read so far (emptied when the file changes)."""
    with _lock:
        cache = session.current().config_cache
        if cache.get("parser") is not parser:
            return {}  # a parser of another session or an older text: not kept
        profiles: dict[str, dict[str, Any]] = cache.setdefault("profiles", {})
        return profiles


@overload
def get_profiles(profs: None = None, allow_none: bool = True) -> dict[str, Profile]: ...
@overload
def get_profiles(profs: Union[str, Iterable[str]], allow_none: bool = True) -> dict[str, Optional[Profile]]: ...


def get_profiles(profs: Union[str, Iterable[str], None] = None,
                 allow_none: bool = True) -> Union[dict[str, Profile], dict[str, Optional[Profile]]]:
    """fyrd's ``get_profiles``: every profile by name, or those named in ``profs``."""
    if profs is None:
        return get_profile()
    names = [profs] if isinstance(profs, str) else list(profs)
    return {_profile_name(n): get_profile(n, allow_none=allow_none) for n in names}


def set_profile(name: str, kwargs: Mapping[str, Any], update: bool = True) -> Profile:
    """Create or change a profile; with ``update`` the keywords are merged into the existing ones (a
    keyword set to None is removed). Values are checked before anything is saved."""
    name = _profile_name(name)
    if isinstance(kwargs, Profile):
        return _save_profile(Profile._of(name, kwargs.kwargs))
    given = _checked(name, {k: v for k, v in kwargs.items() if v is not None})
    dropped = {canonical_name(k) for k, v in kwargs.items() if v is None}
    with _lock:
        existing = get_profile(name) if update else None
        current = {k: v for k, v in (existing.kwargs if existing else {}).items() if k not in dropped and k not in given}
        current.update(given)
        return _save_profile(Profile._of(name, current))


def _save_profile(profile: Profile) -> Profile:
    with _lock:
        parser = _copy(_read())
        section = PROFILE_PREFIX + profile.name
        if parser.has_section(section):
            parser.remove_section(section)
        parser.add_section(section)
        for key, value in profile.text().items():
            parser.set(section, key, value)
        _write(parser)
    return profile


def del_profile(name: str) -> bool:
    """Delete a profile; False when there was none."""
    with _lock:
        parser = _copy(_read())
        removed = parser.remove_section(PROFILE_PREFIX + _profile_name(name))
        if removed:
            _write(parser)
        return removed


def _to_text(key: str, value: Any) -> str:
    """A checked keyword value as the config file holds it, read back to the same value."""
    import shlex

    kind = get_spec(key).type
    if kind == "time":
        text = format_time(value)
    elif kind == "memory":
        text = next(f"{value // f}{u}" for f, u in ((1024 ** 3, "P"), (1024 ** 2, "T"), (1024, "G"), (1, "M"))
                    if value % f == 0)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif kind == "args":
        text = shlex.join(value)
    elif kind == "imports":
        text = "; ".join(value)
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    if "\n" in text:
        raise ConfigError(f"profile value {key}: cannot span lines")
    return text


def merged_keywords(kwargs: Mapping[str, Any], profile: Optional[str] = None) -> dict[str, Any]:
    """Option-table defaults < the ``default`` profile < the named profile < explicit keywords,
    cast and checked."""
    merged = dict(defaults())
    layers = [get_profile("default")]
    if profile:
        named = get_profile(profile)
        if named is None:
            known = ", ".join(sorted(get_profile())) or "none"
            raise ConfigError(f"profile={profile!r}: no such profile (known: {known}); "
                              f"create it with `cluster profile set {profile} cores=4 ...`")
        layers.append(named)
    for layer in layers:
        if layer is not None:
            merged.update(layer.kwargs)
    merged.update(check_arguments(kwargs))
    return merged

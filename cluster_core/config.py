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
import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping, Optional

import attrs

from .errors import ConfigError, OptionError

ENV_CONFIG = "CLUSTER_CORE_CONFIG"
PROFILE_PREFIX = "profile "
_lock = threading.RLock()
_cache: dict[str, Any] = {}


def config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    return _platform_path(os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _platform_path(xdg_config_home: Optional[str], home: Optional[str]) -> Path:
    """The per-user config file (platformdirs costs ~0.1 ms a call: once per environment it depends on)."""
    import platformdirs
    return Path(platformdirs.user_config_dir("cluster-core", appauthor=False)) / "config.ini"


def _read() -> configparser.ConfigParser:
    path = config_path()
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        key = (str(path), None, None)
    with _lock:
        if _cache.get("key") == key:
            return _cache["parser"]
        parser = configparser.ConfigParser(interpolation=None)
        if key[1] is not None:
            try:
                with open(path, encoding="utf-8") as fh:
                    parser.read_file(fh, source=str(path))
            except configparser.Error as exc:
                raise ConfigError(_describe(exc, path)) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}") from None
        _cache.update(key=key, parser=parser)
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
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            parser.write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with _lock:
        _cache.clear()


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.strip().rpartition(".")
    section = section or "core"
    if not name or not re.fullmatch(r"[\w.-]+", name) or section.startswith(PROFILE_PREFIX.strip()):
        raise ConfigError(f"{key!r} is not a setting name; use section.key, e.g. core.backend")
    return section, name


def get_option(key: str, default: Optional[str] = None) -> Optional[str]:
    """A setting by ``section.key`` (a bare key means ``core.key``); ``default`` when unset."""
    section, name = _split(key)
    parser = _read()
    if parser.has_section(section) and parser.has_option(section, name):
        return parser.get(section, name)
    return default


def set_option(key: str, value: Optional[Any]) -> None:
    """Set a setting (None removes it) and save the file."""
    section, name = _split(key)
    with _lock:
        parser = _copy(_read())
        if value is None:
            if parser.has_section(section):
                parser.remove_option(section, name)
        else:
            text = str(value)
            if "\n" in text:
                raise ConfigError(f"{key}: a setting cannot span lines")
            if not parser.has_section(section):
                parser.add_section(section)
            parser.set(section, name, text)
        _write(parser)


def options() -> dict[str, dict[str, str]]:
    """Every plain setting, by section."""
    parser = _read()
    return {s: dict(parser.items(s)) for s in parser.sections() if not s.startswith(PROFILE_PREFIX)}


def _copy(parser: configparser.ConfigParser) -> configparser.ConfigParser:
    new = configparser.ConfigParser(interpolation=None)
    new.read_dict({s: dict(parser.items(s)) for s in parser.sections()})
    return new


# --- profiles ---------------------------------------------------------------------------------------

@attrs.define
class Profile:
    """A named set of job keywords, e.g. ``Profile("big", {"cores": 16, "mem": "64G"})``."""

    name: str
    kwargs: dict = attrs.field(factory=dict)

    def __attrs_post_init__(self):
        if not re.fullmatch(r"[\w.-]+", self.name):
            raise ConfigError(f"profile name {self.name!r}: use letters, digits, '_', '.', '-'")
        from .options import check_arguments
        try:
            check_arguments(self.kwargs)
        except OptionError as exc:
            raise OptionError(f"profile {self.name!r}: {exc}", keyword=exc.keyword, value=exc.value) from None


def get_profile(name: Optional[str] = None) -> Any:
    """The named Profile (None when it does not exist); without a name, every profile by name."""
    parser = _read()
    if name is None:
        return {s[len(PROFILE_PREFIX):]: Profile(s[len(PROFILE_PREFIX):], dict(parser.items(s)))
                for s in parser.sections() if s.startswith(PROFILE_PREFIX)}
    section = PROFILE_PREFIX + name
    if not parser.has_section(section):
        return None
    return Profile(name, dict(parser.items(section)))


def set_profile(name: str, kwargs: Mapping[str, Any], update: bool = True) -> Profile:
    """Create or change a profile; with ``update`` the keywords are merged into the existing ones."""
    from .options import canonical_name
    with _lock:
        parser = _copy(_read())
        section = PROFILE_PREFIX + name
        current = dict(parser.items(section)) if (update and parser.has_section(section)) else {}
        for key, value in kwargs.items():
            current = {k: v for k, v in current.items() if canonical_name(k) != canonical_name(key)}
            if value is not None:
                current[key] = _to_text(value)
        profile = Profile(name, current)  # validates before anything is saved
        if parser.has_section(section):
            parser.remove_section(section)
        parser.add_section(section)
        for key, value in current.items():
            parser.set(section, key, value)
        _write(parser)
        return profile


def del_profile(name: str) -> bool:
    """Delete a profile; False when there was none."""
    with _lock:
        parser = _copy(_read())
        removed = parser.remove_section(PROFILE_PREFIX + name)
        if removed:
            _write(parser)
        return removed


def _to_text(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(getattr(v, "id", v)) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    text = str(value)
    if "\n" in text:
        raise ConfigError("profile values cannot span lines")
    return text


def merged_keywords(kwargs: Mapping[str, Any], profile: Optional[str] = None) -> dict[str, Any]:
    """Option-table defaults < the ``default`` profile < the named profile < explicit keywords,
    cast and checked."""
    from .options import check_arguments, defaults
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
            merged.update(check_arguments(layer.kwargs))
    merged.update(check_arguments(kwargs))
    return merged

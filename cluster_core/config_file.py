"""The seed's ``config_file`` module: profiles and settings under the names its users know.

Everything here is :mod:`cluster_core.config`; this module only adds the seed's short names
(``get``, ``set``, ``delete``, ``get_config``) so code written for the seed's API runs unchanged.
"""

from __future__ import annotations

from typing import Any, Optional

from .config import (CORE_SETTINGS, Profile, config_path, del_profile, delete, get_option, get_profile,
                     get_profiles, options, set_option, set_profile)

__all__ = ["Profile", "get_profile", "get_profiles", "set_profile", "del_profile", "get_option", "set_option",
           "get", "set", "delete", "get_config", "config_path", "CORE_SETTINGS"]


def get(section: Optional[str] = None, key: Optional[str] = None, default: Any = None) -> Any:
    """The seed's ``get(section, key, default)``: one setting, a whole section (no key), or every
    section (no arguments). As in the seed, a missing key with a default is created with it."""
    if section is None:
        return options()
    value = get_option(section, key)
    if value is None and default is not None and key is not None:
        set_option(section, key, default)
        return str(default) if not isinstance(default, str) else default
    return value


def set(section: str, key: str, value: Any) -> None:  # noqa: A001 - the seed's name
    """The seed's ``set(section, key, value)``."""
    set_option(section, key, value)


def get_config() -> dict[str, dict[str, str]]:
    """Every setting by section (the seed's ``get_config``; profiles are :func:`get_profile`'s)."""
    return options()

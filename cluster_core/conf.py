"""fyrd's ``conf`` module name for the config functions: the same as :mod:`cluster_core.config_file`."""

from __future__ import annotations

from .config_file import *  # noqa: F401,F403
from .config_file import __all__  # noqa: F401

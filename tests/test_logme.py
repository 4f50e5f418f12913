import io
import logging
import re

import pytest

from cluster_core import OptionError, logme


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def restore_logger():
    logger = logging.getLogger("cluster_core")
    before = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = before[0], before[1], before[2]
    logme._handler = None


def test_plain_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    logme.setup("info", stream=stream)
    log = logging.getLogger("cluster_core.test")
    log.debug("hidden")
    log.info("shown %d", 1)
    log.warning("careful")
    text = stream.getvalue()
    assert "hidden" not in text and "\x1b[" not in text
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO +cluster_core\.test: shown 1$", text, re.M)
    assert "WARNING  cluster_core.test: careful" in text


def test_colour_on_a_terminal_and_level_changed_at_run_time(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTTY()
    logme.setup("warn", stream=stream)
    log = logging.getLogger("cluster_core.x")
    log.info("not yet")
    logme.set_level("debug")
    log.debug("now visible")
    log.error("bad")
    text = stream.getvalue()
    assert "not yet" not in text and "now visible" in text
    assert "\x1b[31mERROR\x1b[0m" in text and "\x1b[2mDEBUG\x1b[0m" in text


def test_no_color_env_and_setup_twice_keeps_one_handler(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = FakeTTY()
    logme.setup("info", stream=stream)
    logme.setup("info", stream=stream)
    logging.getLogger("cluster_core").info("once")
    assert stream.getvalue().count("once") == 1 and "\x1b[" not in stream.getvalue()


def test_level_from_environment_and_bad_level(monkeypatch):
    monkeypatch.setenv("CLUSTER_LOG_LEVEL", "error")
    logme.setup(stream=io.StringIO())
    assert logging.getLogger("cluster_core").level == logging.ERROR
    with pytest.raises(OptionError, match="log level 'loud'"):
        logme.set_level("loud")

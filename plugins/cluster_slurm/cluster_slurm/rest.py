"""Slurm through slurmrestd (REST API v0.0.38 of Slurm 22.05, JWT authentication): submit, one query per
poll for all jobs, cancel; no process forked per call.

HTTP is the standard library's ``http.client``: the calls are a few JSON requests to one local daemon,
over TCP or a unix socket. http.client speaks both (a unix socket is one overridden ``connect``), while
urllib.request has no unix sockets and requests needs a second package for them; a dependency would buy
nothing here (no TLS client certificates, no connection pools worth having for one request per poll).

The token comes from ``$SLURM_JWT`` when set, else from ``scontrol token`` (one fork per lifespan,
renewed before it expires); its user (the JWT's ``sun`` claim) is the X-SLURM-USER-NAME header.
Failures are classified as the commands' are: a daemon that cannot be reached (refused connection while
slurmrestd restarts, timeout, 502-504) or a controller it cannot reach is transient and retried; an
answer with an error is permanent, a SchedulerError (SubmitError at submit) with the server's message.
slurmrestd 22.05 answers every failure with HTTP 500, so the error messages are what is classified.
"""

from __future__ import annotations

import base64
import getpass
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Mapping, NoReturn, Optional, Sequence

import attrs

from cluster_core.backend import (Commands, ConfigError, Detection, QueueJob, SchedulerError, SubmitError,
                                  ask_patiently, chunks, first_line, keyword_for_error, known_ids, matches_any,
                                  merge_records, setting, submit_retrying)

from . import calls, parse, rest_parse, rest_submit

log = logging.getLogger("cluster_core.slurm.rest")

API = "v0.0.38"
DB_API = "v0.0.38"  # the plugin is openapi/dbv0.0.38, its paths /slurmdb/v0.0.38/...
#: Where ci/slurm/up.sh (and most sites) run slurmrestd; slurm.rest_url or $SLURMRESTD_URL say otherwise.
DEFAULT_URL = "http://127.0.0.1:6820"
URL_ENV = "SLURMRESTD_URL"
#: Seconds a token from ``scontrol token`` lives; renewed when less than RENEW_BEFORE is left.
TOKEN_LIFESPAN = 1800
RENEW_BEFORE = 120.0
TIMEOUT = 30.0
DETECT_TIMEOUT = 3.0
RETRIES = 2
BACKOFF = 1.0
SUBMIT_RETRIES = 3
#: How long a failed submission keeps asking whether its job exists before giving up (seconds).
CHECK_PATIENCE = 600.0
#: Ids per accounting query (they go in the URL).
CHUNK = 500

#: Answers of a slurmrestd that cannot reach slurmctld/slurmdbd, or is going away: worth another try.
TRANSIENT = (
    r"Unable to contact slurm controller", r"Socket timed out", r"Zero Bytes were transmitted",
    r"Communication connection failure", r"Transport endpoint is not connected", r"Connection refused",
    r"Connection reset", r"Resource temporarily unavailable", r"temporarily unable to accept job",
    r"Unable to connect to database", r"slurmdbd.*(not|connection)", r"timed out", r"HTTP 50[234]",
)
#: A failed submission that proves the request never reached slurmrestd (it could not connect: refused,
#: or no socket while it restarts): retried without asking whether the job exists.
NOT_SUBMITTED = (r"^connect: ",)
#: What slurmrestd 22.05 answers when slurmctld or slurmdbd refused the token (measured with a forged
#: one, tests/fixtures/rest-errors.json): no word of authentication except from slurmdbd. A request that
#: met one of these is tried once more with a new token from scontrol (never a submission: see submit()).
AUTH_FAILED = (r"Authentication", r"Unspecified error", r"Zero Bytes were transmitted", r"HTTP 401",
               r"HTTP 403")
#: Cancelling a job that already ended or was purged.
CANCEL_HARMLESS = (r"Invalid job id specified", r"already completing or completed",
                   r"Job/step already completing or completed")
RELEASE_HARMLESS = (r"Job has already finished", r"^HTTP 200: job array update from \S+ failed$", *CANCEL_HARMLESS)
RELEASE_DONE = (2017, 2084)  # ESLURM_INVALID_JOB_ID (purged), ESLURM_ALREADY_DONE
#: Refusals and the keyword each concerns: sbatch's table, but "Requested node configuration is not
#: available" alone is what slurmctld says of too much memory (sbatch adds "Memory specification can not
#: be satisfied" itself, which slurmrestd does not), so memory comes first when the job asked for some.
SUBMIT_ERRORS = ((r"Requested node configuration is not available",
                  ("mem", "mem_per_cpu", "cores", "tasks", "nodes", "tasks_per_node")), *parse.SUBMIT_ERRORS)
#: Accounting has nothing for the ids (dbv0.0.38 error 9003).
NOTHING_FOUND = 9003

SLURM = Commands("slurm", TRANSIENT, NOT_SUBMITTED)


# --- where slurmrestd is ---------------------------------------------------------------------------------

@attrs.frozen
class Endpoint:
    """slurmrestd's address: ``http://host:port`` or ``unix:/path/to/socket``."""

    url: str
    host: str = ""
    port: int = 0
    socket_path: Optional[str] = None

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        text = url.strip()
        if text.startswith("unix:"):
            path = urllib.parse.urlparse(text).path if text.startswith("unix://") else text[len("unix:"):]
            if not path.startswith("/"):
                raise ConfigError(f"slurm.rest_url={url!r}: a unix socket needs an absolute path (unix:/run/...)")
            return cls(url=text, socket_path=path)
        parts = urllib.parse.urlparse(text if "//" in text else "http://" + text)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"slurm.rest_url={url!r}: expected http://HOST:PORT or unix:/path/to/socket "
                              "(https: put slurmrestd behind a local proxy, or use the socket)")
        return cls(url=text, host=parts.hostname, port=parts.port or 80)

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.socket_path:
            return _UnixConnection(self.socket_path, timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: http.client with its connect() replaced."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def configured_url() -> str:
    """slurm.rest_url, else $SLURMRESTD_URL, else DEFAULT_URL."""
    return setting("slurm.rest_url") or os.environ.get(URL_ENV) or DEFAULT_URL


# --- tokens -----------------------------------------------------------------------------------------------

def claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT: ``sun`` the user, ``exp`` when it expires; {} when unreadable."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@attrs.frozen
class Token:
    value: str
    user: str
    expires: Optional[float] = None
    renewable: bool = True

    def fresh(self, now: Optional[float] = None) -> bool:
        return self.expires is None or self.expires - (now or time.time()) > RENEW_BEFORE


class Tokens:
    """The JWT for the requests: ``$SLURM_JWT`` as given, or ``scontrol token``, kept and renewed."""

    def __init__(self, lifespan: int = TOKEN_LIFESPAN):
        self.lifespan = lifespan
        self._token: Optional[Token] = None
        self._lock = threading.Lock()

    def get(self) -> Token:
        with self._lock:
            env = os.environ.get("SLURM_JWT")
            if env:
                c = claims(env)
                return Token(env, str(c.get("sun") or getpass.getuser()), c.get("exp"), renewable=False)
            if self._token is None or not self._token.fresh():
                self._token = self._new()
            return self._token

    def forget(self) -> bool:
        """Drop the kept token after the server refused it; True when a new one can be had."""
        with self._lock:
            self._token = None
        return not os.environ.get("SLURM_JWT")

    def _new(self) -> Token:
        res = SLURM.run(["scontrol", "token", f"lifespan={self.lifespan}"], timeout=TIMEOUT, retries=RETRIES,
                        backoff=BACKOFF)
        for line in (res.stdout + "\n" + res.stderr).splitlines():
            if line.startswith("SLURM_JWT="):
                value = line.split("=", 1)[1].strip()
                c = claims(value)
                expires = c.get("exp") or time.time() + self.lifespan
                log.debug("new token for %s, valid until %s", c.get("sun"), time.ctime(expires))
                return Token(value, str(c.get("sun") or getpass.getuser()), float(expires))
        raise SchedulerError("scontrol token gave no SLURM_JWT (is AuthAltTypes=auth/jwt in slurm.conf?): "
                             + first_line(res.stdout + res.stderr, "no output"),
                             command=["scontrol", "token"], returncode=res.returncode, output=res.stdout + res.stderr)


# --- requests ---------------------------------------------------------------------------------------------

class Client:
    """JSON requests to one slurmrestd, authenticated, with the commands' retry rules."""

    def __init__(self, url: Optional[str] = None, tokens: Optional[Tokens] = None, timeout: float = TIMEOUT):
        self.endpoint = Endpoint.parse(url or configured_url())
        self.tokens = tokens or Tokens()
        self.timeout = timeout

    def request(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None, *,
                retries: int = RETRIES, backoff: float = BACKOFF, timeout: Optional[float] = None,
                ok: Sequence[int] = (), lenient: bool = False, renew: bool = True) -> dict[str, Any]:
        """The decoded answer of one request, tried again ``retries`` times while the failure is transient
        (and, with ``renew``, once more with a new token when the answer looks like a refused token). An
        answer with errors raises SchedulerError carrying its messages, unless each error number is in
        ``ok``; ``lenient`` accepts any answer below HTTP 400 (a submission's "job is held" note)."""
        attempt = 0
        renewed = not renew
        while True:
            attempt += 1
            try:
                return self._once(method, path, body, timeout or self.timeout, ok, lenient)
            except SchedulerError as exc:
                auth = matches_any(exc.output, AUTH_FAILED)
                if auth and not renewed and self.tokens.forget():
                    renewed = True
                    log.info("slurmrestd refused the token (%s); asking scontrol for a new one", first_line(exc))
                    continue
                if auth and os.environ.get("SLURM_JWT"):
                    exc.args = (f"{exc} (the token in $SLURM_JWT may have expired or be for another user: "
                                "unset it to have scontrol token give one)",)
                if not exc.transient or attempt > retries:
                    raise
                delay = backoff * 2 ** (attempt - 1)
                log.warning("%s; trying again in %.1f s (attempt %d of %d)", first_line(exc), delay, attempt + 1,
                            retries + 1)
                time.sleep(delay)

    def _once(self, method: str, path: str, body: Optional[Mapping[str, Any]], timeout: float,
              ok: Sequence[int], lenient: bool) -> dict[str, Any]:
        command = [method, self.endpoint.url + path]
        token = self.tokens.get()
        headers = {"X-SLURM-USER-NAME": token.user, "X-SLURM-USER-TOKEN": token.value,
                   "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self.endpoint.connection(timeout)
        where = self.endpoint.socket_path or f"{self.endpoint.host}:{self.endpoint.port}"
        try:
            try:
                conn.connect()
            except OSError as exc:  # nothing was sent: returncode -1 and "connect:" say so
                raise SchedulerError(f"cannot connect to slurmrestd at {where}: {exc}", command=command,
                                     returncode=-1, output=f"connect: {exc}", transient=True) from None
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:  # the request may have been acted on
                raise SchedulerError(f"slurmrestd at {where} did not answer {method} {path}: {exc}",
                                     command=command, output=f"{type(exc).__name__}: {exc}",
                                     transient=True) from None
        finally:
            conn.close()
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            doc = {"errors": [{"error": raw.decode(errors="replace").strip()[:500]}]}
        if not isinstance(doc, dict):
            doc = {"errors": [{"error": f"unexpected answer: {str(doc)[:200]}"}]}
        numbers = rest_parse.error_numbers(doc)
        if status < 400 and (lenient or not doc.get("errors") or (numbers and numbers <= set(ok))):
            return doc
        if numbers and numbers <= set(ok):
            return doc
        messages = rest_parse.errors(doc) or [f"HTTP {status} {http.client.responses.get(status, '')}".strip()]
        output = f"HTTP {status}: " + "; ".join(messages)
        raise SchedulerError(f"slurmrestd refused {method} {path}: {'; '.join(messages)}", command=command,
                             returncode=status, output=output, transient=matches_any(output, TRANSIENT))


_clients: dict[str, Client] = {}
_clients_lock = threading.Lock()


def client() -> Client:
    """The process's client for the configured URL (its token kept across calls)."""
    url = configured_url()
    with _clients_lock:
        if url not in _clients:
            _clients[url] = Client(url)
        return _clients[url]


# --- the transport: detect, submit, query, cancel ----------------------------------------------------------

def detect(c: Optional[Client] = None, timeout: float = DETECT_TIMEOUT) -> Detection:
    """slurmrestd answers a token-authenticated ping and the controller it reaches is UP."""
    try:
        c = c or client()
        doc = c.request("GET", f"/slurm/{API}/ping", retries=0, timeout=timeout)
    except (SchedulerError, ConfigError) as exc:
        return Detection(False, f"slurmrestd cannot be used: {first_line(exc)}")
    pings = doc.get("pings") or []
    up = [p for p in pings if str(p.get("ping", "")).upper() == "UP"]
    if not up:
        return Detection(False, f"slurmrestd at {c.endpoint.url} answers, but no controller is UP: {pings}")
    return Detection(True, f"slurmrestd at {c.endpoint.url}: {up[0].get('hostname', '?')} is UP")


def submit(script: Path, options: Mapping[str, Any], arguments: Sequence[str] = (),
           c: Optional[Client] = None) -> str:
    """POST the script and its options (its #SBATCH lines and ``arguments``, translated) to slurmrestd;
    the job id. As with sbatch, a unique comment lets a retry after a lost answer find the job it made."""
    c = c or client()
    script = Path(script)
    token = f"cluster-core:{uuid.uuid4().hex}"
    try:
        text = script.read_text()
    except OSError as exc:
        raise SubmitError(f"cannot read job script {script}: {exc}") from None
    body = rest_submit.job_description(
        text, script.name, [*arguments, f"--comment={token}"], cwd=os.getcwd(), environ=os.environ,
        umask=_umask(), host=socket.gethostname())

    def attempt() -> str:
        # no retry with a new token here: a submission is only repeated after asking for the job
        doc = c.request("POST", f"/slurm/{API}/job/submit", body, retries=0, timeout=TIMEOUT * 2, lenient=True,
                        renew=False)
        job_id = doc.get("job_id")
        if not isinstance(job_id, int):
            raise SubmitError(f"slurmrestd gave no job id for {script}: {json.dumps(doc)[:300]}")
        if doc.get("job_submit_user_msg"):
            log.info("slurmrestd said: %s", doc["job_submit_user_msg"])
        return str(job_id)

    def refused(exc: SchedulerError) -> NoReturn:
        if exc.transient and "Resource temporarily unavailable" in exc.output:  # EAGAIN, each time
            raise calls.queue_full(exc, "Resource temporarily unavailable", f"{SUBMIT_RETRIES + 1} times") from None
        if exc.transient:
            raise SubmitError(f"slurmrestd could not submit {script}: {exc}", command=exc.command,
                              returncode=exc.returncode, output=exc.output, transient=True) from None
        message = exc.output.split(": ", 1)[-1]
        keyword = keyword_for_error(message, SUBMIT_ERRORS, options)
        about = f" ({keyword}={options[keyword]!r})" if keyword is not None and keyword in options else ""
        raise SubmitError(f"Slurm refused job {script.name}: {message}{about}", keyword=keyword,
                          command=exc.command, returncode=exc.returncode, output=exc.output) from None

    return submit_retrying(attempt, SLURM, find=lambda exc: _find_by_comment(c, token), refused=refused,
                           retries=SUBMIT_RETRIES, backoff=BACKOFF, logger=log)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def _find_by_comment(c: Client, token: str) -> Optional[str]:
    """The id of the job whose comment is ``token``, or None; asked patiently while slurmrestd does not
    answer, and a SubmitError when it never does (the job is then not submitted again)."""
    def give_up(exc: SchedulerError) -> SubmitError:
        return SubmitError(f"submitting over slurmrestd failed and whether the job was created cannot be told "
                           f"({first_line(exc)}); it is not submitted again, so as not to run it twice. Look "
                           f"for it with: squeue -t all -o '%i %k' | grep {token}", command=exc.command,
                           returncode=exc.returncode, output=exc.output, transient=True)

    doc = ask_patiently(lambda: c.request("GET", f"/slurm/{API}/jobs", retries=0), give_up,
                        waiting="a submission failed and slurmrestd cannot be asked whether the job exists",
                        patience=CHECK_PATIENCE, delay=BACKOFF, logger=log)
    for job in doc.get("jobs") or ():
        if job.get("comment") == token:
            return str(job.get("array_job_id") or job.get("job_id"))
    return None


_db_warned: set[str] = set()


def _accounting(c: Client, ids: Sequence[str]) -> list[QueueJob]:
    """Finished jobs from slurmdbd through slurmrestd; [] when accounting cannot tell (said once)."""
    out: list[QueueJob] = []
    for chunk in chunks(list(ids), CHUNK):
        query = urllib.parse.urlencode({"step": ",".join(chunk)})
        try:
            doc = c.request("GET", f"/slurmdb/{DB_API}/jobs?{query}", ok=(NOTHING_FOUND,))
        except SchedulerError as exc:
            first = first_line(exc)
            level = logging.DEBUG if first in _db_warned else logging.WARNING
            _db_warned.add(first)
            log.log(level, "accounting cannot tell about jobs %s: %s (jobs it alone knows are settled from "
                    "their exit files)", ",".join(chunk[:10]), first)
            continue
        out += rest_parse.parse_db_jobs(doc, chunk)
    return out


def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str], partition: Optional[str],
                c: Optional[Client] = None) -> list[QueueJob]:
    """One ``GET /jobs`` (every job slurmctld holds, filtered here), then slurmdbd for the ids it no
    longer holds and for arrays (whose finished tasks it forgets one by one), as squeue + sacct do."""
    c = c or client()
    doc = c.request("GET", f"/slurm/{API}/jobs")
    if job_ids is None:
        return rest_parse.parse_jobs(doc, None, user, partition)
    ids = parse.job_ids(job_ids)
    if not ids:
        return []
    live = rest_parse.parse_jobs(doc, ids)
    known = known_ids(live)
    arrays = {j.array_id for j in live if j.array_id}
    ask = [i for i in ids if i not in known or i in arrays]
    return merge_records(live, _accounting(c, ask) if ask else [])


def cancel(job_ids: Sequence[str], c: Optional[Client] = None) -> bool:
    """``DELETE /job/<id>`` for each id (v0.0.38 has no call for many); ids that already ended are fine."""
    c = c or client()
    for job_id in dict.fromkeys(str(j) for j in job_ids):
        try:
            c.request("DELETE", f"/slurm/{API}/job/{urllib.parse.quote(job_id, safe='')}")
        except SchedulerError as exc:
            if not matches_any(exc.output, CANCEL_HARMLESS):
                raise
            log.debug("cancel %s: %s", job_id, first_line(exc))
    return True


def release(job_ids: Sequence[str], c: Optional[Client] = None) -> bool:
    """``POST /job/<id>`` with ``hold: false`` for each id (v0.0.38 updates one job a call), as
    ``scontrol release`` does; ids that ended (or were purged) are fine. Slurm 22.05 answers the release
    of a whole array with HTTP 200 and an unnumbered "job array update ... failed" although every task was
    released (seen on the CI cluster), so that answer is taken as done."""
    c = c or client()
    for job_id in dict.fromkeys(str(j) for j in job_ids):
        try:
            c.request("POST", f"/slurm/{API}/job/{urllib.parse.quote(job_id, safe='')}", {"hold": False},
                      ok=RELEASE_DONE)
        except SchedulerError as exc:
            if not matches_any(exc.output, RELEASE_HARMLESS):
                raise
            log.debug("release %s: %s", job_id, first_line(exc))
    return True


# --- choosing the transport -------------------------------------------------------------------------------

TRANSPORTS = ("commands", "rest", "auto")
_found: dict[str, Detection] = {}


def transport() -> str:
    """The checked value of slurm.transport (commands when unset)."""
    value = (setting("slurm.transport") or "commands").strip().lower()
    if value not in TRANSPORTS:
        raise ConfigError(f"slurm.transport={value!r}: expected one of {', '.join(TRANSPORTS)}")
    return value


def use_rest() -> bool:
    """Whether calls go over slurmrestd: slurm.transport=rest (SchedulerError when it does not answer),
    or auto and it answered a ping with a token within DETECT_TIMEOUT (asked once per process and URL)."""
    mode = transport()
    if mode == "commands":
        return False
    url = configured_url()
    found = _found.get(url)
    if found is None or (mode == "rest" and not found.available):
        found = detect()
        if found.available or mode == "auto":
            _found[url] = found
            log.info("slurm.transport=%s: %s", mode, found.reason if found.available
                     else f"Slurm's commands, as {found.reason}")
    if mode == "rest" and not found.available:
        raise SchedulerError(f"slurm.transport=rest, but {found.reason} (slurm.rest_url or ${URL_ENV} give "
                             f"its address: now {url}; slurm.transport=auto falls back to the commands)")
    return found.available

"""Pure parsers for qstat output: Torque ``qstat -x`` XML, PBS Pro/OpenPBS ``qstat -f -F json``, and the
``qstat -f`` text both print. Each returns :class:`cluster_core.records.QueueJob` records.

All three are turned into one flat mapping per job (``Resource_List.nodes``-style keys), which
:func:`record` normalises; so a fact is read the same way whatever format carried it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping, Optional

from cluster_core.backend import QueueJob, State, parse_timestamp as parse_time

from . import ids, states


class ParseError(ValueError):
    """qstat printed something that cannot be read; the message says what and where."""


# --- shared normalisation ---------------------------------------------------------------------------

def _int(value: Any) -> Optional[int]:
    """An integer from an int or a numeric string ("-29": PBS sometimes quotes Exit_status)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    m = re.fullmatch(r"\s*([+-]?\d+)\s*", str(value))
    return int(m.group(1)) if m else None


def _str(value: Any) -> Optional[str]:
    """A text attribute; JSON may carry number-looking strings as numbers (a job named 123)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def user_of(owner: Optional[str]) -> Optional[str]:
    """``pbstest@localhost`` -> ``pbstest``."""
    if not owner:
        return None
    return str(owner).split("@", 1)[0] or None


def hosts_of(exec_host: Optional[str]) -> tuple[str, ...]:
    """Unique host names, in order, from ``vm/0-1``, ``a/0+a/1+b/2`` (Torque) or ``b1/0*16+b2/0*16``."""
    if not exec_host:
        return ()
    out: list[str] = []
    for part in str(exec_host).split("+"):
        host = part.strip().split("/", 1)[0].strip()
        if host and host not in out:
            out.append(host)
    return tuple(out)


def cores_of_nodes_spec(spec: str) -> Optional[int]:
    """Processors in a Torque ``nodes`` request: ``4:ppn=24`` -> 96, ``1`` -> 1, ``2:ppn=2+n07:ppn=4`` -> 8."""
    total = 0
    for part in str(spec).split("+"):
        fields = part.strip().split(":")
        if not fields or not fields[0]:
            return None
        count = int(fields[0]) if fields[0].isdigit() else 1  # a host name asks for one node
        ppn = 1
        for f in fields[1:]:
            if f.startswith("ppn=") and f[4:].isdigit():
                ppn = int(f[4:])
        total += count * ppn
    return total or None


def _cores(a: Mapping[str, Any]) -> Optional[int]:
    ncpus = _int(a.get("Resource_List.ncpus"))
    if "Resource_List.select" in a and ncpus:
        return ncpus  # PBS Pro computes the total from the select statement
    nodes = a.get("Resource_List.nodes")
    value = cores_of_nodes_spec(str(nodes)) if nodes else None
    if value:
        return value
    return ncpus or _int(a.get("Resource_List.procs"))


HOLDS = frozenset("uosp")  # Hold_Types letters that keep a job from running (n: none, a: Torque's slot limit)


def _reason(a: Mapping[str, Any], state: State, why: Optional[str]) -> Optional[str]:
    comment = a.get("comment")
    comment = str(comment).strip() if comment is not None else ""
    if state is State.HELD and not comment:
        hold = {"u": "user hold", "o": "operator hold", "s": "system hold", "p": "password hold",
                "a": "array slot limit hold"}.get(str(a.get("Hold_Types", "")).strip()[:1])
        depend = a.get("depend")
        parts = [p for p in (hold, f"depends on {depend}" if depend else None) if p]
        comment = "; ".join(parts)
    parts = [p for p in (why, comment) if p]
    return "; ".join(parts) if parts else None


def record(job_id: str, a: Mapping[str, Any]) -> QueueJob:
    """One normalised job from its flat attribute mapping (any of the three formats)."""
    jid = ids.try_parse(job_id)
    letter = _str(a.get("job_state"))
    pbspro = (letter or "")[:1] in ("F", "X", "B") or any(
        k in a for k in ("Exit_status", "Resource_List.select", "stime", "exec_vnode", "array_indices_submitted"))
    exitcode = _int(a.get("Exit_status", a.get("exit_status")))
    state, why = states.normalise(letter, exitcode, pbspro=pbspro, substate=_int(a.get("substate")))
    if state is State.PENDING and set(_str(a.get("Hold_Types")) or "n") & HOLDS:
        state = State.HELD  # PBS Pro lists the subjobs of a held array as Q with the array's hold
    if (not pbspro and state.finished and exitcode is None
            and ((jid is not None and jid.is_array_parent) or a.get("job_array_request"))):
        # Torque's array summary ends without an exit status whatever its tasks did
        state, why = State.UNKNOWN, "array ended; its tasks' outcomes are listed with qstat -t"
    array_id = task_id = None
    if jid is not None and jid.is_subjob:
        array_id, task_id = str(jid.parent), jid.task_id
    elif a.get("array_id"):  # PBS Pro subjob attributes (absent on queued subjobs)
        array_id, task_id = str(a["array_id"]), _int(a.get("array_index"))
    if task_id is None and a.get("job_array_id") is not None:
        task_id = _int(a.get("job_array_id"))
    return QueueJob(
        id=job_id.strip(),
        state=state,
        name=_str(a.get("Job_Name")),
        user=user_of(_str(a.get("Job_Owner"))) or _str(a.get("euser")),
        partition=_str(a.get("queue")),
        exitcode=exitcode,
        reason=_reason(a, state, why),
        raw_state=letter,
        cores=_cores(a),
        nodes=hosts_of(a.get("exec_host")),
        submit_time=parse_time(a.get("ctime")),
        start_time=parse_time(a.get("start_time", a.get("stime"))),
        end_time=parse_time(a.get("comp_time", a.get("obittime"))),
        array_id=array_id,
        task_id=task_id,
    )


# --- Torque: qstat -x --------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DOC_RE = re.compile(r"<Data\s*/>|<Data\b.*?</Data>", re.DOTALL)
_VARLIST_RE = re.compile(r"<Variable_List>.*?</Variable_List>", re.DOTALL)


def torque_xml_attrs(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(job id, flat attributes) for every ``<Job>`` in Torque ``qstat -x`` output.

    Torque prints one ``<?xml?><Data>`` document per job id operand, each on one line; qstat may put a
    warning line on stdout; stray control characters inside ``<Variable_List>`` (environment values) are
    dropped (fyrd met them on a real site) and a document still unreadable is retried without it."""
    text = _CONTROL_RE.sub("", text or "")
    out: list[tuple[str, dict[str, Any]]] = []
    for doc in _DOC_RE.findall(text):
        try:
            root = ET.fromstring(doc)
        except ET.ParseError:
            try:
                root = ET.fromstring(_VARLIST_RE.sub("", doc))
            except ET.ParseError as exc:
                raise ParseError(f"qstat -x printed XML that cannot be read ({exc}): {doc[:300]!r}") from None
        for job in root.iter("Job"):
            flat: dict[str, Any] = {}
            for child in job:
                if len(child):
                    for sub in child:
                        flat[f"{child.tag}.{sub.tag}"] = (sub.text or "").strip()
                else:
                    flat[child.tag] = (child.text or "").strip()
            job_id = flat.pop("Job_Id", "")
            if job_id:
                out.append((job_id, flat))
    if not out and "<Data" not in text and text.strip().startswith("<"):
        raise ParseError(f"qstat -x printed no <Data> document: {text[:300]!r}")
    return out


def parse_torque_xml(text: str) -> list[QueueJob]:
    """Records from Torque ``qstat -x`` (``-t``) output."""
    return [record(job_id, flat) for job_id, flat in torque_xml_attrs(text)]


# --- PBS Pro / OpenPBS: qstat -f -F json -------------------------------------------------------------

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|(?<=:)(\s*)([^\s"{}\[\],:]+)', re.DOTALL)
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)  # escape pairs left to right: in \\' the \\ is one pair


def _fix_escape(m: re.Match[str]) -> str:
    return m.group(0) if m.group(1) and m.group(1) in '"\\/bfnrtu' else "\\\\" + m.group(1)


def sanitise_json(text: str) -> str:
    """Repair what OpenPBS/PBS Pro ``qstat -F json`` is known to print invalidly.

    OpenPBS 23.06.06 writes values that look numeric as bare tokens: ``"Job_Name":inf``, ``"B":.5``,
    ``"A":1.``, ``"C":-00``, ``"foo":005`` (openpbs#1255); older versions write invalid escapes such as
    ``\\'`` and ``\\,`` (openpbs#2049). Bare tokens that are not JSON numbers become strings; invalid
    escapes keep their backslash literally (escapes are read in pairs, so the valid ``\\\\'`` that
    OpenPBS writes for a quote in a path stays as it is); nothing else inside a string is touched.
    Readers try the text as it is first: valid JSON is never "repaired"."""
    def fix(m: re.Match[str]) -> str:
        if m.group(2) is None:  # a string
            return _ESCAPE_RE.sub(_fix_escape, m.group(0))
        space, token = m.group(1), m.group(2)
        if _JSON_NUMBER.fullmatch(token) or token in ("true", "false", "null"):
            return m.group(0)
        return space + json.dumps(token)
    return _JSON_TOKEN_RE.sub(fix, text)


def _json_documents(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``, skipping lines that are not JSON (stderr mixed into stdout, e.g.
    "qstat: 15.vm Job has finished, use -x or -H ...")."""
    decoder = json.JSONDecoder(strict=False)
    docs: list[dict[str, Any]] = []
    pos = 0
    starts = [m.start() for m in re.finditer(r"^\s*\{", text, re.MULTILINE)]
    for start in starts:
        if start < pos:
            continue
        try:
            doc, end = decoder.raw_decode(text, text.index("{", start))
        except json.JSONDecodeError as exc:
            raise ParseError(f"qstat -F json printed invalid JSON ({exc}) even after repair") from None
        if isinstance(doc, dict):
            docs.append(doc)
        pos = end
    return docs


def pbs_json_attrs(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(job id, flat attributes) for every job in ``qstat -f -F json`` output; no ``"Jobs"`` key (no jobs,
    or only unknown ids) gives an empty list."""
    text = text or ""
    if not text.strip():
        return []
    try:
        docs = _json_documents(text)
    except ParseError:
        docs = _json_documents(sanitise_json(text))
    if not docs:
        raise ParseError(f"qstat -F json printed no JSON object: {text[:300]!r}")
    out: list[tuple[str, dict[str, Any]]] = []
    for doc in docs:
        jobs = doc.get("Jobs") or {}
        if not isinstance(jobs, dict):
            raise ParseError(f"qstat -F json: 'Jobs' is a {type(jobs).__name__}, not an object")
        for job_id, attrs in jobs.items():
            flat: dict[str, Any] = {}
            for key, value in (attrs or {}).items():
                if isinstance(value, dict):
                    if key == "Variable_List":
                        continue
                    for sub, subvalue in value.items():
                        flat[f"{key}.{sub}"] = subvalue
                else:
                    flat[key] = value
            out.append((job_id, flat))
    return out


def parse_pbs_json(text: str) -> list[QueueJob]:
    """Records from PBS Pro/OpenPBS ``qstat -f -F json`` (``-x``, ``-t``) output."""
    return [record(job_id, flat) for job_id, flat in pbs_json_attrs(text)]


# --- qstat -f text (both) -----------------------------------------------------------------------------

_HEADER_RE = re.compile(r"^Job Id:\s*(\S+)\s*$")
_ATTR_RE = re.compile(r"^ {1,7}(?! )([A-Za-z_][\w.]*) = ?(.*)$")


def qstat_f_attrs(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(job id, attributes) from ``qstat -f`` text.

    Attribute lines are indented by spaces (4 on both servers); long values wrap onto continuation lines
    indented by a TAB (Torque, older PBS Pro) or 8 spaces (PBS Pro on NCI Gadi), cut anywhere, even
    inside a word, so they are joined with nothing between. A line without indentation inside a record
    is a raw newline inside a value (Torque's sched_hint, a comment) and is joined with a newline."""
    out: list[tuple[str, dict[str, Any]]] = []
    current: Optional[dict[str, Any]] = None
    key: Optional[str] = None
    for line in (text or "").splitlines():
        header = _HEADER_RE.match(line)
        if header:
            current = {}
            key = None
            out.append((header.group(1), current))
            continue
        if current is None or not line.strip():
            continue
        attr = _ATTR_RE.match(line)
        if attr:
            key = attr.group(1)
            current[key] = attr.group(2).rstrip()
        elif key is not None:
            if line[:1] in ("\t", " "):
                current[key] += line.strip()
            else:
                current[key] += "\n" + line.rstrip()
    return out


def parse_qstat_f(text: str) -> list[QueueJob]:
    """Records from ``qstat -f`` text of either server."""
    return [record(job_id, flat) for job_id, flat in qstat_f_attrs(text)]


def ids_carrying(text: str, marker: str, xml: bool) -> list[str]:
    """Ids of the jobs whose attributes hold ``marker`` (``NAME=value``, not followed by more of a word),
    in Torque ``qstat -x`` XML or in ``qstat -f`` text. The XML is searched as text: a document that does
    not parse (control characters in a variable) still answers."""
    pattern = re.compile(re.escape(marker) + r"(?![\w-])")
    if xml:
        out = []
        for block in re.findall(r"<Job>.*?</Job>", text or "", re.DOTALL):
            m = re.search(r"<Job_Id>\s*([^<]+?)\s*</Job_Id>", block)
            if m and pattern.search(block):
                out.append(m.group(1))
        return out
    return [job_id for job_id, attrs in qstat_f_attrs(text) if any(pattern.search(str(v)) for v in attrs.values())]


# --- server attributes --------------------------------------------------------------------------------

PBSPRO_DEFAULT_MAX_ARRAY = 10000  # OpenPBS PBS_MAX_ARRAY_JOB_DFL, used while max_array_size is unset


def max_array_size(text: str, pbspro: bool) -> Optional[int]:
    """The server's array size limit from ``qstat -B -f -F json`` (PBS Pro: ``max_array_size``, 10000 when
    unset) or ``qstat -B -f`` text (Torque: ``max_job_array_size``, no limit when unset)."""
    if pbspro:
        for doc in _json_documents(sanitise_json(text or "")):
            for attrs in (doc.get("Server") or {}).values():
                value = _int((attrs or {}).get("max_array_size"))
                if value:
                    return value
        return PBSPRO_DEFAULT_MAX_ARRAY
    m = re.search(r"^\s*max_job_array_size\s*=\s*(\d+)\s*$", text or "", re.MULTILINE)
    return int(m.group(1)) if m else None

"""Import a county's organisation (regions, service areas, units, locations) from a CSV file, dry run first.

The file, as IT exports it from a spreadsheet:

- UTF-8, with or without a byte order mark. Comma or semicolon separated, as the header line shows
  (Finnish Excel writes semicolons); a cell holding the separator, a quote or a line break is quoted ("").
- A header row, then one row per node. Columns, in any order, names case-insensitive: ``kind``
  (region, area, unit or location), ``code``, ``parent`` (the parent's code; empty for a region),
  ``name_fi``, ``name_sv``, ``name_en`` (at most 200 characters), ``oid`` (e.g. 1.2.246.10.2048198.10.1),
  ``service_type`` (one of fleet.org.SERVICE_TYPES), ``tz`` (units only, e.g. Europe/Helsinki),
  ``misuse_interval_s`` (seconds, 0–3600, decimal point or comma), ``target`` (a whole number from
  -100 to 100). Only kind, code and name_fi are required.
- A column left out means "leave as is" for an existing node and empty for a new one; an empty cell in
  a column that is there means empty, except that an empty ``tz`` keeps the unit's zone (new: the default).
- The code says which node a row is. An existing node keeps its kind and its parent (import adds and
  changes, it does not move) and must not be archived. Parents come before their children.
- Blank rows are skipped; at most 5,000 rows.

``plan_import`` says what each row would do without touching the database; ``apply_import`` does it in
one transaction, after checking that the organisation is still what the dry run saw.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.configdoc import known_time_zone

from .db.org import Organisation
from .org import KINDS, PARENT_KIND, SERVICE_TYPES, UNIT, OrgError, Tree, check_code, check_oid
from .store import DEFAULT_TZ

COLUMNS = tuple("kind code parent name_fi name_sv name_en oid service_type tz misuse_interval_s target".split())
REQUIRED = ("kind", "code", "name_fi")
MAX_ROWS = 5000
_A = {"region": "a region", "area": "an area", "unit": "a unit", "location": "a location"}
# Control characters, lone surrogates (undecodable bytes), U+FFFD (a file decoded as the wrong charset)
# and the invisible direction overrides that make a name read differently from what is stored.
_HOSTILE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd\u202a-\u202e\u2066-\u2069]")
_NUMBERS: tuple[tuple[str, re.Pattern[str], Callable[[str], float], int, int, str], ...] = (
    ("misuse_interval_s", re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,3})?"), float, 0, 3600, "seconds 0–3600, e.g. 30 or 2.5"),
    ("target", re.compile(r"[+-]?[0-9]{1,3}"), int, -100, 100, "a whole number from -100 to 100, e.g. 40"),
)


@dataclass(frozen=True)
class ImportLine:
    """What one row of the file does, so the person sees every change before it is made."""

    line: int
    code: str
    action: str  # "add" | "change" | "same" | "error"
    changes: dict[str, tuple[Any, Any]]  # field -> (before, after); an add also has kind and parent (its code)
    error: str | None


@dataclass(frozen=True)
class ImportPlan:
    """Every row's outcome: the dry run shown to the person, and what ``apply_import`` carries out."""

    lines: list[ImportLine]

    @property
    def ok(self) -> bool:
        """True when no row has an error: only then may the plan be applied."""
        return all(line.action != "error" for line in self.lines)

    @property
    def added(self) -> int:
        """How many nodes the import adds, for the summary."""
        return sum(line.action == "add" for line in self.lines)

    @property
    def changed(self) -> int:
        """How many existing nodes the import changes, for the summary."""
        return sum(line.action == "change" for line in self.lines)

    @property
    def unchanged(self) -> int:
        """How many rows match their node already, for the summary."""
        return sum(line.action == "same" for line in self.lines)


def plan_import(text: str, tree: Tree, zones: Mapping[str, str]) -> ImportPlan:
    """The dry run: what each row would do to ``tree``, so the person can check it before anything is stored.

    ``zones`` maps unit codes to their time zones (the store's ``unit_zones()``; a unit missing from it
    is in the default zone). Never raises on bad input: every problem is an error line.
    """
    text = text.removeprefix("\ufeff")
    sep = ";" if (first := text.partition("\n")[0]).count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    records: list[tuple[int, list[str]]] = []  # (first line, cells): the header, then the rows
    start = 1
    tail: ImportLine | None = None
    try:
        while True:
            start = reader.line_num + 1  # a quoted cell may hold line breaks: the row starts here
            if (cells := next(reader, None)) is None:
                break
            if records and not any(c.strip() for c in cells):
                continue
            if len(records) > MAX_ROWS:
                tail = _error(start, "", f"line {start}: more than {MAX_ROWS:,} rows: split the file")
                break
            records.append((start, cells))
    except csv.Error as exc:
        fix = f'write a cell that holds {sep!r}, a quote or a line break in double quotes, and a quote in it as ""'
        tail = _error(start, "", f"line {start}: not well-formed CSV ({exc}): {fix}")
    if not records:
        return ImportPlan([tail or _error(1, "", "line 1: the file is empty: the first line is the header")])
    header = [h.strip().lower() for h in records[0][1]]
    good = f"a header names the columns {', '.join(COLUMNS)} (only {', '.join(REQUIRED)} are required)"
    wrong = [f"unknown column {_show(h)}" for h in header if h not in COLUMNS]
    wrong += [f"column {h} is there twice" for h in sorted({h for h in header if header.count(h) > 1})]
    wrong += [f"the required column {c} is missing" for c in REQUIRED if c not in header]
    if wrong:
        return ImportPlan([_error(1, "", f"line 1 (the header): {wrong[0]}: {good}")])
    rows, at = records[1:], header.index("code")
    checker = _Checker(tree, zones, {c[at].strip(): n for n, c in reversed(rows) if len(c) == len(header)})
    lines: list[ImportLine] = []
    for line, cells in rows:
        if len(cells) != len(header):
            msg = f"line {line}, column count: {len(cells)} cells where the header has {len(header)} columns:"
            lines.append(_error(line, "", f"{msg} write a cell that holds {sep!r} in double quotes"))
            continue
        lines.append(checker.row(line, dict(zip(header, (c.strip() for c in cells), strict=True))))
    return ImportPlan([*lines, *([tail] if tail else [])])


def apply_import(plan: ImportPlan, text: str, org: Organisation, actor: str) -> ImportPlan:
    """Carry out the dry run the person approved, all of it or (on any failure) none of it.

    Raises OrgError if the plan has errors, or if the file or the organisation changed since the dry run.
    """
    if not plan.ok:
        raise OrgError("the import has errors: fix the file and run the dry run again (nothing was stored)")
    with org.store.writing(zones=True):
        tree = org.tree()
        now = plan_import(text, tree, org.store.unit_zones())
        if now != plan:
            raise OrgError("the organisation or the file changed since the dry run: run it again (nothing was stored)")
        ids = {code: node.id for code, node in tree.by_code.items()}
        for line in now.lines:
            fields = {k: after for k, (_, after) in line.changes.items()}
            tz = fields.pop("tz", None)
            if line.action == "add":
                kind, parent = fields.pop("kind"), fields.pop("parent", None)
                node = org.add(actor, kind, None if parent is None else ids[parent], line.code, tz=tz, **fields)
                ids[node.code] = node.id
            elif line.action == "change":
                org.update(actor, ids[line.code], tz=tz, **fields)
    return now


class _Checker:
    """Checks rows in file order against the tree and the rows before them."""

    def __init__(self, tree: Tree, zones: Mapping[str, str], first_line: Mapping[str, int]) -> None:
        self.tree, self.zones, self.first_line = tree, zones, first_line
        self.seen: dict[str, tuple[int, str, bool]] = {}  # code -> (line, kind, ok) of the rows so far
        self.errors: list[str] = []
        self.line = 0

    def bad(self, column: str, message: str) -> None:
        self.errors.append(f"line {self.line}, column {column}: {message}")

    def row(self, line: int, raw: dict[str, str]) -> ImportLine:
        """What one row does: the line the person sees, and what ``apply_import`` carries out."""
        self.errors, self.line = [], line
        for column, value in raw.items():
            if _HOSTILE.search(value):
                self.bad(column, "holds a control, direction or \ufffd character: save as CSV UTF-8, a cell a line")
        if self.errors:
            return _error(line, raw["code"][:64], "; ".join(self.errors))
        kind = raw["kind"].lower()
        if kind not in KINDS:
            self.bad("kind", f"{_show(raw['kind'])} is no kind: write region, area, unit or location")
        try:
            code = check_code(raw["code"])
        except OrgError as exc:
            code = ""
            self.bad("code", f"{_show(raw['code'])}: {exc}")
        values = self._values(raw)
        tz = raw.get("tz") or None
        if tz is not None and kind in KINDS and kind != UNIT:
            self.bad("tz", f"only units have a time zone: leave it empty for {_A[kind]}")
        elif tz is not None and not known_time_zone(tz):
            self.bad("tz", f"{_show(tz)} is no time zone: write an IANA name such as Europe/Helsinki")
        existing = self.tree.by_code.get(code)
        parent = raw.get("parent") or None
        if code in self.seen:
            self.bad("code", f"{code} is on line {self.seen[code][0]} already: write each node once")
        elif existing is not None:
            now = None if existing.parent_id is None else self.tree.nodes[existing.parent_id].code
            if existing.kind != kind and kind in KINDS:
                self.bad("kind", f"{code} is an existing {existing.kind}: write {existing.kind} (import keeps kinds)")
            if existing.archived:
                self.bad("code", f"{code} is archived: restore it first on the organisation page")
            if "parent" in raw and parent != now:
                where = f"is under {now}: write {now}" if now else "is at the top: leave parent empty"
                self.bad("parent", f"{code} {where} (import does not move nodes)")
        elif kind in KINDS:
            self._parent(kind, parent, "parent" in raw)
        if code and code not in self.seen:
            self.seen[code] = (line, kind, not self.errors)
        if self.errors:
            return _error(line, code or raw["code"][:64], "; ".join(self.errors))
        after = dict(values)
        if kind == UNIT and (tz is not None or existing is None):
            after["tz"] = tz or self.zones.get(code, DEFAULT_TZ)
        if existing is None:
            head = {"kind": kind} if parent is None else {"kind": kind, "parent": parent}
            return ImportLine(line, code, "add", {k: (None, v) for k, v in (head | after).items()}, None)
        before = {k: self.zones.get(code, DEFAULT_TZ) if k == "tz" else getattr(existing, k) for k in after}
        changes = {k: (before[k], v) for k, v in after.items() if before[k] != v}
        return ImportLine(line, code, "change" if changes else "same", changes, None)

    def _values(self, raw: dict[str, str]) -> dict[str, Any]:
        """The node's fields from the columns there are, checked by the organisation's rules."""
        values: dict[str, Any] = {}
        for column in ("name_fi", "name_sv", "name_en"):
            if column in raw:
                values[column] = raw[column]
                if len(raw[column]) > 200:
                    self.bad(column, f"at most 200 characters (this one has {len(raw[column])}): shorten it")
        if not raw["name_fi"]:
            self.bad("name_fi", "every node needs its Finnish name, e.g. Hervannan terveysasema")
        if "oid" in raw:
            try:
                values["oid"] = check_oid(raw["oid"]) if raw["oid"] else None
            except OrgError as exc:
                self.bad("oid", f"{_show(raw['oid'])}: {exc}")
        if "service_type" in raw:
            values["service_type"] = raw["service_type"].lower() or None
            if values["service_type"] not in (None, *SERVICE_TYPES):
                known = ", ".join(SERVICE_TYPES)
                self.bad("service_type", f"{_show(raw['service_type'])} is unknown: write one of {known}")
        for column, pattern, number, low, high, good in _NUMBERS:
            if column in raw:
                text = raw[column].replace(",", ".").replace("\u2212", "-")  # decimal comma, the minus sign
                value = number(text) if pattern.fullmatch(text) else None
                if text and (value is None or not low <= value <= high):
                    self.bad(column, f"{_show(raw[column])}: write {good}")
                values[column] = value
        return values

    def _parent(self, kind: str, parent: str | None, given: bool) -> None:
        """Report why a new node's parent will not do: missing, unknown, later, archived or of the wrong kind."""
        want = PARENT_KIND[kind]
        if want is None:
            if parent is not None:
                self.bad("parent", "a region is at the top: leave parent empty")
            return
        rule = f"{_A[kind]} belongs under {_A[want]}: write the code of an existing {want} or of one on an earlier line"
        node = None if parent is None else self.tree.by_code.get(parent)
        if parent is None:
            self.bad("parent", rule if given else f"{rule} (add a parent column)")
        elif parent in self.seen:
            at, its_kind, ok = self.seen[parent]
            if not ok:
                self.bad("parent", f"{parent} on line {at} has an error: fix that line first")
            elif its_kind != want:
                self.bad("parent", f"{parent} (line {at}) is {_A[its_kind]}, and {rule}")
        elif node is not None:
            if node.kind != want:
                self.bad("parent", f"{parent} is {_A[node.kind]}, and {rule}")
            elif node.archived:
                self.bad("parent", f"{parent} is archived: restore it first, or write another {want}'s code")
        elif self.first_line.get(parent, 0) > self.line:
            at = self.first_line[parent]
            self.bad("parent", f"{_show(parent)} is on line {at}, after this one: put parents before their children")
        else:
            self.bad("parent", f"there is no {want} {_show(parent)}: {rule}")


def _error(line: int, code: str, message: str) -> ImportLine:
    return ImportLine(line, code, "error", {}, message)


def _show(value: str) -> str:
    """A value quoted for a message, cut short so that a huge cell does not flood the page."""
    return repr(value if len(value) <= 40 else value[:40] + "…")

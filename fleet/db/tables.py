"""The fleet database's tables, defined once for every engine (Alembic revisions are checked against them).

Integers that hold milliseconds or counters are 64-bit (``BIGINT``; plain ``INTEGER`` on SQLite, where
both are the same 64-bit storage class and only ``INTEGER PRIMARY KEY`` aliases the rowid).
"""

from __future__ import annotations

import sqlalchemy as sa

#: Named constraints, so that a later revision can alter them on every engine (SQLite batch mode).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

#: A 64-bit integer; on SQLite an autoincrementing key of this type must be INTEGER to alias the rowid.
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A rowid table on SQLite: rows append at the end, and a batch of one terminal's consecutive votes
# touches a few adjacent pages of the key (measured faster than WITHOUT ROWID).
votes = sa.Table(
    "votes",
    metadata,
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("store", sa.Text, nullable=False, server_default=""),  # the terminal's series (SPEC 7.1)
    sa.Column("seq", BigInt, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("scale", sa.Text, nullable=False),
    sa.Column("answer", sa.Integer, nullable=False),
    sa.Column("lang", sa.Text, nullable=False),
    sa.Column("wall", BigInt, nullable=False),
    sa.Column("mono", BigInt, nullable=False),
    sa.Column("boot", sa.Text, nullable=False),
    sa.Column("synced", sa.Boolean, nullable=False),
    sa.Column("unit", sa.Text),
    sa.Column("cfg", BigInt, nullable=False),
    sa.Column("flags", sa.Text),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("role", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("received", BigInt, nullable=False),
    sa.Column("best", BigInt, nullable=False),  # best estimate of the press time (DESIGN guarantee 4)
    sa.Column("time_status", sa.Text, nullable=False),
    # Where the answer was given: "terminal" (every vote the ingest stores); other channels (the
    # feedback form behind a unit's QR code) join the same results under their own name.
    sa.Column("channel", sa.Text, nullable=False, server_default="terminal"),
    sa.PrimaryKeyConstraint("device", "store", "seq"),
)
# Only unsynchronised votes are indexed: retroactive correction finds them by boot, and synchronised
# votes (nearly all) cost no index write. Queries must say ``synced = false()`` literally to use it.
sa.Index(
    "votes_unsynced",
    votes.c.device,
    votes.c.boot,
    sqlite_where=votes.c.synced == sa.false(),
    postgresql_where=votes.c.synced == sa.false(),
)

#: The latest synchronised point (greatest mono) seen for each boot of each terminal.
clock_anchors = sa.Table(
    "clock_anchors",
    metadata,
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("boot", sa.Text, nullable=False),
    sa.Column("wall", BigInt, nullable=False),
    sa.Column("mono", BigInt, nullable=False),
    sa.Column("applied_offset", BigInt),  # the offset the boot's stored unsynced votes carry
    sa.PrimaryKeyConstraint("device", "boot"),
    sqlite_with_rowid=False,
)

terminals = sa.Table(
    "terminals",
    metadata,
    sa.Column("device", sa.Text, primary_key=True),
    sa.Column("unit", sa.Text),
    sa.Column("online", sa.Boolean),
    sa.Column("conn", BigInt, nullable=False, server_default="0"),
    sa.Column("state_wall", BigInt),
    sa.Column("fw", sa.Text),
    sa.Column("last_seen", BigInt),
    sa.Column("hb_wall", BigInt),
    sa.Column("hb_mono", BigInt),
    sa.Column("hb_boot", sa.Text),
    sa.Column("hb_synced", sa.Boolean),
    sa.Column("uptime", BigInt),
    sa.Column("queue", BigInt),
    sa.Column("oldest", BigInt),
    sa.Column("temp", sa.Float),
    sa.Column("disk", BigInt),
    sa.Column("applied_version", BigInt, nullable=False, server_default="0"),
    sa.Column("report_version", BigInt),
    sa.Column("report_status", sa.Text),
    sa.Column("report_reason", sa.Text),
    sa.Column("report_at", BigInt),
    sa.Column("refused", BigInt),  # votes the terminal set aside as refused, as its heartbeat reports
)

desired_configs = sa.Table(
    "desired_configs",
    metadata,
    sa.Column("device", sa.Text, primary_key=True),
    sa.Column("version", BigInt, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),  # canonical JSON text: equal documents compare equal
    sa.Column("set_at", BigInt, nullable=False),
)

rejection_counts = sa.Table(
    "rejection_counts",
    metadata,
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("device", sa.Text, nullable=False),  # "" when the sender is unknown
    sa.Column("count", BigInt, nullable=False),
    sa.Column("last_at", BigInt, nullable=False),
    sa.PrimaryKeyConstraint("reason", "device"),
)

rejection_log = sa.Table(
    "rejection_log",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("at", BigInt, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("device", sa.Text),
    sa.Column("detail", sa.Text, nullable=False),
)

#: Each unit's time zone: its days (the rollup's, the dashboards') are local days there. A unit is
#: added with the default zone the first time a vote names it or a terminal is placed in it.
units = sa.Table(
    "units",
    metadata,
    sa.Column("unit", sa.Text, primary_key=True),
    sa.Column("tz", sa.Text, nullable=False),
)

ROLLUP_KEY: tuple[str, ...] = tuple(
    "unit device question scale day answer role reason misuse after_hours uncertain channel".split()
)


def _rollup_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("scale", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("answer", sa.Integer, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("misuse", sa.Boolean, nullable=False),
        sa.Column("after_hours", sa.Boolean, nullable=False),
        sa.Column("uncertain", sa.Boolean, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("count", BigInt, nullable=False),
        sa.PrimaryKeyConstraint(*ROLLUP_KEY),
        sqlite_with_rowid=False,  # clustered by its key: one unit's rows are adjacent pages
    )


#: Votes counted per local day, kept in the transaction that stores or corrects them (rollup.py), so
#: no figure ever scans the votes. A vote that names no unit is kept under its terminal (``unit`` "",
#: ``device`` set) and counts for wherever that terminal is placed when the figures are read; a vote
#: that names its unit has ``device`` "". "No role" and "no reason" are "" (key columns are not null).
daily_rollup = _rollup_table("daily_rollup")
# "The last 31 days of every unit" reads a range of days across all units.
sa.Index("daily_rollup_day", daily_rollup.c.day)
#: The same counts per local month (``day`` is the month's first day): a year of a unit is 12 rows
#: per answer instead of 365, so figures over long periods read whole months here and days only at
#: the period's ragged ends.
monthly_rollup = _rollup_table("monthly_rollup")

HOURS_KEY: tuple[str, ...] = tuple(
    "unit device question scale month weekday hour grade role misuse after_hours channel".split()
)
#: Votes counted per local month, weekday (0 Monday) and hour of day: the heat map of when answers
#: come and how they lean, read without the votes. ``grade`` is the answer's side, not the answer
#: (+1 promoter or positive, −1 detractor, 0 the rest; rollup.grade), so a unit's month is at most
#: 7 × 24 × 3 rows per role. Reasons and uncertain times are not kept here: the daily rollup has them.
hour_rollup = sa.Table(
    "hour_rollup",
    metadata,
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("scale", sa.Text, nullable=False),
    sa.Column("month", sa.Date, nullable=False),
    sa.Column("weekday", sa.Integer, nullable=False),
    sa.Column("hour", sa.Integer, nullable=False),
    sa.Column("grade", sa.Integer, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("after_hours", sa.Boolean, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("count", BigInt, nullable=False),
    sa.PrimaryKeyConstraint(*HOURS_KEY),
    sqlite_with_rowid=False,
)

# -- the organisation, accounts and their history (the fleet web) -----------------------------------

#: Region → service area → unit → location, one row per node. ``code`` is the node's stable id: for a
#: unit, the unit id that terminals' configurations and votes carry (``units.unit``). A node is
#: archived, never deleted, so that old figures and the audit log keep their names.
org_nodes = sa.Table(
    "org_nodes",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("parent_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("kind", sa.Text, nullable=False),  # region | area | unit | location
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("name_fi", sa.Text, nullable=False),
    sa.Column("name_sv", sa.Text, nullable=False, server_default=""),
    sa.Column("name_en", sa.Text, nullable=False, server_default=""),
    sa.Column("oid", sa.Text),  # the national SOTE organisation register's OID, validated
    sa.Column("service_type", sa.Text),
    sa.Column("hours", sa.Text),  # opening hours as the configuration document's ``hours`` (JSON)
    sa.Column("misuse_interval_s", sa.Float),
    sa.Column("target", sa.Integer),  # the unit's target score
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", BigInt, nullable=False),
)

#: People who sign in to the fleet web. ``scope_id``: the part of the hierarchy the role is granted on
#: (None: the whole organisation). Passwords are Argon2id hashes.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),  # admin | manager | viewer
    sa.Column("scope_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("lang", sa.Text, nullable=False, server_default="fi"),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", BigInt, nullable=False),
    sa.Column("last_login", BigInt),
)

#: Where each terminal stood and when: one row per placement, closed (``until_ms``) when it moves.
placements = sa.Table(
    "placements",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("unit", sa.Text),  # None: taken out of service (retired or unplaced)
    sa.Column("location_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("since_ms", BigInt, nullable=False),
    sa.Column("until_ms", BigInt),
    sa.Column("by", sa.Text, nullable=False),
)
sa.Index("placements_device", placements.c.device, placements.c.since_ms)

#: Every change people make: who, what, when, and the object before and after (JSON).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("at", BigInt, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),  # e.g. unit.create, terminal.place, account.disable
    sa.Column("object", sa.Text, nullable=False),  # what it was done to, e.g. "unit:kaukajarvi"
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
)

#: Bearer tokens of reporting systems for the read-only API (/api/v1), each over a part of the
#: hierarchy (``scope_id`` None: everything). Only the token's SHA-256 is kept: it is shown once.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("scope_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", BigInt, nullable=False),
    sa.Column("revoked_at", BigInt),
    sa.Column("last_used_at", BigInt),
)

#: Terminals taken out of service for good (stolen, broken): kept with their history, hidden by default.
retired_terminals = sa.Table(
    "retired_terminals",
    metadata,
    sa.Column("device", sa.Text, primary_key=True),
    sa.Column("at", BigInt, nullable=False),
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
)

#: Each ingest process's counters, written every few seconds, so the web (another process) can show
#: throughput: the latest snapshot and the one before it give the recent rate without a scan of votes.
ingest_stats = sa.Table(
    "ingest_stats",
    metadata,
    sa.Column("worker", sa.Text, primary_key=True),  # the ingest's MQTT client id
    sa.Column("started_at", BigInt, nullable=False),
    sa.Column("at", BigInt, nullable=False),
    sa.Column("messages", BigInt, nullable=False),
    sa.Column("votes", BigInt, nullable=False),
    sa.Column("duplicates", BigInt, nullable=False),
    sa.Column("rejected", BigInt, nullable=False),
    sa.Column("prev_at", BigInt),
    sa.Column("prev_votes", BigInt),
)

# -- configurations people edit (fleet/configs.py) ---------------------------------------------------

#: A named series of terminal documents (without their unit), e.g. "Health centres: NPS".
config_sets = sa.Table(
    "config_sets",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", BigInt, nullable=False),
)

#: Every saved version of a set; versions never change once saved. ``published_at`` set: the set's
#: current version is its newest published one.
config_versions = sa.Table(
    "config_versions",
    metadata,
    sa.Column("set_id", BigInt, sa.ForeignKey("config_sets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("saved_at", BigInt, nullable=False),
    sa.Column("saved_by", sa.Text, nullable=False),
    sa.Column("published_at", BigInt),
    sa.Column("published_by", sa.Text),
    sa.PrimaryKeyConstraint("set_id", "version"),
)

#: Which set a part of the organisation or a single terminal gets: ``target`` is ``node:<id>`` or
#: ``terminal:<device>``; the nearest assignment wins.
config_assignments = sa.Table(
    "config_assignments",
    metadata,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("set_id", BigInt, sa.ForeignKey("config_sets.id"), nullable=False),
    sa.Column("assigned_at", BigInt, nullable=False),
)

# -- alerts ----------------------------------------------------------------------------------------

#: One row per occurrence of a condition (fleet/alerts.py): opened when first found, resolved when no
#: longer found, acknowledged by a person with a comment. ``node_id`` is the org node whose people
#: see it (None: IT only).
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("node_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("detail", sa.Text, nullable=False),  # JSON: the figures behind it
    sa.Column("opened_at", BigInt, nullable=False),
    sa.Column("last_seen_at", BigInt, nullable=False),
    sa.Column("resolved_at", BigInt),
    sa.Column("acked_at", BigInt),
    sa.Column("acked_by", sa.Text),
    sa.Column("ack_comment", sa.Text),
)
sa.Index("alerts_open", alerts.c.kind, alerts.c.subject, alerts.c.resolved_at)

#: Where alerts go: an e-mail address or a webhook URL, for the alerts of one part of the hierarchy
#: (``node_id``; None: every alert).
alert_routes = sa.Table(
    "alert_routes",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("node_id", BigInt, sa.ForeignKey("org_nodes.id")),
    sa.Column("channel", sa.Text, nullable=False),  # email | webhook
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", BigInt, nullable=False),
)

#: The outbox: one row per alert event and route, written in the transaction that opens or resolves
#: the alert, sent by the alert worker with retries (so a restart loses no message and sends none twice).
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("alert_id", BigInt, sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("route_id", BigInt, sa.ForeignKey("alert_routes.id"), nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # opened | resolved
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", BigInt, nullable=False),
    sa.Column("sent_at", BigInt),
    sa.Column("failed_at", BigInt),  # gave up after the last attempt
    sa.Column("last_error", sa.Text),
)
sa.Index("alert_deliveries_due", alert_deliveries.c.sent_at, alert_deliveries.c.failed_at, alert_deliveries.c.next_at)

# -- enrolment (fleet/enrolment.py) ------------------------------------------------------------------

#: Claims that blank terminals trade for an identity of their own (SPEC §13). Only the secret's
#: SHA-256 is kept: the secret is shown once. ``replaces``: a one-use secret that re-enrols a replaced
#: terminal under that device id (its placement continues).
enrolment_secrets = sa.Table(
    "enrolment_secrets",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),  # the batch's label
    sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", BigInt, nullable=False),
    sa.Column("expires_at", BigInt, nullable=False),
    sa.Column("max_uses", sa.Integer),  # None: any number of terminals
    sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("replaces", sa.Text),
    sa.Column("revoked_at", BigInt),
    sa.Column("revoked_by", sa.Text),
)

#: One row per terminal that enrolled with a secret: the device id it got and where its request
#: stands (pending | enrolled | refused | revoked). The terminal's broker password is its own: only
#: its SHA-256 is kept, to recognise the terminal's status requests. No addresses are kept.
enrolment_requests = sa.Table(
    "enrolment_requests",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the request id the terminal was given (random)
    sa.Column("secret_id", BigInt, sa.ForeignKey("enrolment_secrets.id"), nullable=False),
    sa.Column("hardware", sa.Text, nullable=False),
    sa.Column("fw", sa.Text),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("requested_at", BigInt, nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", BigInt),
)
sa.Index("enrolment_requests_device", enrolment_requests.c.device)

# -- open feedback (fleet/feedback.py) -------------------------------------------------------------

#: Answers from the open-feedback form behind each unit's QR code. The score, when given, is also a
#: vote (device "web", seq = this id, channel "web") so it joins the unit's results; this row keeps
#: what only the form has: the free text, already redacted (the unredacted text is never stored),
#: how many removals redaction made, and the text's tone. No address, cookie or account is kept.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("location", sa.Text),  # the location's code when the form was opened through one
    sa.Column("received", BigInt, nullable=False),
    sa.Column("lang", sa.Text, nullable=False),
    sa.Column("question", sa.Text),
    sa.Column("scale", sa.Text),
    sa.Column("answer", sa.Integer),  # None: the person wrote without scoring
    sa.Column("role", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("redactions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tone", sa.Text),  # None: themes not assigned yet
    sa.Column("method", sa.Text),  # what assigned themes and tone: builtin, openai:<model>, staff
    sa.Column("corrected_by", sa.Text),
    sa.Column("corrected_at", BigInt),
)
sa.Index("feedback_unit_received", feedback.c.unit, feedback.c.received)

#: The themes of each text (docs/themes-labelling.md), one row per theme.
feedback_themes = sa.Table(
    "feedback_themes",
    metadata,
    sa.Column("feedback_id", BigInt, sa.ForeignKey("feedback.id"), nullable=False),
    sa.Column("theme", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("feedback_id", "theme"),
)

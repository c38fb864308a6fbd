"""The fleet database's schema as one named migration set, applied at every start (safe to re-run)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("hymy-fleet")


@MIGRATIONS(name="0001_initial")
def _initial(db: Database) -> None:
    # A rowid table: rows append at the end, and a batch of one terminal's consecutive votes touches
    # a few adjacent pages of the (device, seq) key. Measured faster than WITHOUT ROWID here, whose
    # partial index below costs more per insert.
    db.execute(
        """
        CREATE TABLE votes (
            device TEXT NOT NULL,
            seq INTEGER NOT NULL,
            question TEXT NOT NULL,
            scale TEXT NOT NULL,
            answer INTEGER NOT NULL,
            lang TEXT NOT NULL,
            wall INTEGER NOT NULL,
            mono INTEGER NOT NULL,
            boot TEXT NOT NULL,
            synced INTEGER NOT NULL,
            unit TEXT,
            cfg INTEGER NOT NULL,
            flags TEXT,
            misuse INTEGER NOT NULL,
            role TEXT,
            reason TEXT,
            received INTEGER NOT NULL,
            best INTEGER NOT NULL,
            time_status TEXT NOT NULL,
            PRIMARY KEY (device, seq)
        )
        """
    )
    # Only unsynchronised votes are indexed: retroactive correction finds them by boot, and
    # synchronised votes (nearly all) cost no index write.
    db.execute("CREATE INDEX votes_unsynced ON votes (device, boot) WHERE synced = 0")
    # The latest synchronised point (greatest mono) seen for each boot of each terminal.
    db.execute(
        """
        CREATE TABLE clock_anchors (
            device TEXT NOT NULL,
            boot TEXT NOT NULL,
            wall INTEGER NOT NULL,
            mono INTEGER NOT NULL,
            applied_offset INTEGER,  -- the offset the boot's stored unsynced votes carry
            PRIMARY KEY (device, boot)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE terminals (
            device TEXT PRIMARY KEY,
            unit TEXT,
            online INTEGER,
            conn INTEGER NOT NULL DEFAULT 0,
            state_wall INTEGER,
            fw TEXT,
            last_seen INTEGER,
            hb_wall INTEGER,
            hb_mono INTEGER,
            hb_boot TEXT,
            hb_synced INTEGER,
            uptime INTEGER,
            queue INTEGER,
            oldest INTEGER,
            temp REAL,
            disk INTEGER,
            applied_version INTEGER NOT NULL DEFAULT 0,
            report_version INTEGER,
            report_status TEXT,
            report_reason TEXT,
            report_at INTEGER
        )
        """
    )
    db.execute(
        """
        CREATE TABLE desired_configs (
            device TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL,
            set_at INTEGER NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rejection_counts (
            reason TEXT NOT NULL,
            device TEXT NOT NULL,
            count INTEGER NOT NULL,
            last_at INTEGER NOT NULL,
            PRIMARY KEY (reason, device)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rejection_log (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            reason TEXT NOT NULL,
            device TEXT,
            detail TEXT NOT NULL
        )
        """
    )


@MIGRATIONS(name="0002_store_identity")
def _store_identity(db: Database) -> None:
    # A vote's identity becomes (device, store, seq) (SPEC 7.1): a terminal re-imaged under the same
    # device id sends a new store id and a new series of seqs. SQLite cannot change a primary key in
    # place, so the table is rebuilt once; votes stored before keep the legacy series "".
    db.execute(
        """
        CREATE TABLE votes_v2 (
            device TEXT NOT NULL,
            store TEXT NOT NULL DEFAULT '',
            seq INTEGER NOT NULL,
            question TEXT NOT NULL,
            scale TEXT NOT NULL,
            answer INTEGER NOT NULL,
            lang TEXT NOT NULL,
            wall INTEGER NOT NULL,
            mono INTEGER NOT NULL,
            boot TEXT NOT NULL,
            synced INTEGER NOT NULL,
            unit TEXT,
            cfg INTEGER NOT NULL,
            flags TEXT,
            misuse INTEGER NOT NULL,
            role TEXT,
            reason TEXT,
            received INTEGER NOT NULL,
            best INTEGER NOT NULL,
            time_status TEXT NOT NULL,
            PRIMARY KEY (device, store, seq)
        )
        """
    )
    columns = (
        "device, seq, question, scale, answer, lang, wall, mono, boot, synced, unit, cfg, flags, misuse, role,"
        " reason, received, best, time_status"
    )
    db.execute(f"INSERT INTO votes_v2 ({columns}) SELECT {columns} FROM votes ORDER BY rowid")
    db.execute("DROP TABLE votes")
    db.execute("ALTER TABLE votes_v2 RENAME TO votes")
    db.execute("CREATE INDEX votes_unsynced ON votes (device, boot) WHERE synced = 0")
    # Votes the terminal has set aside because the fleet refused them, as its heartbeat reports.
    db.execute("ALTER TABLE terminals ADD COLUMN refused INTEGER")

"""``python -m fleet``: run the ingest, or inspect and steer the fleet database (thin wrappers over the store)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from protocol import ProtocolError, encode
from protocol.topics import CONFIG, device_topic

from .content import default_config_doc
from .errors import FleetError
from .ingest import DRAIN_CAP, Ingest
from .mqtt import DEFAULT_CLIENT_ID, DEFAULT_SHARE_GROUP, speaks_mqtt5
from .results import format_table, scores_by_unit
from .store import DEFAULT_TZ, FleetStore, open_store
from .workers import Supervisor

log = logging.getLogger("fleet")


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


# SUPPRESS defaults: options may come before or after the command without one level's default
# overwriting what the user gave at the other.
_S = argparse.SUPPRESS


def build_parser() -> argparse.ArgumentParser:
    """The command line: ingest by default, plus results, assign and push-config."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", default=_S, help="fleet database: a SQLite file (created if missing) or a postgresql:// URL"
    )
    common.add_argument("-v", "--verbose", action="store_true", default=_S, help="log debug detail")
    parser = argparse.ArgumentParser(prog="python -m fleet", description="Hymy fleet server.", parents=[common])
    _ingest_args(parser)
    _settings_arg(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ingest = sub.add_parser("ingest", parents=[common], help="ingest votes from the broker (the default)")
    _ingest_args(ingest)
    _settings_arg(ingest)

    results = sub.add_parser("results", parents=[common], help="print NPS and positive share per unit and question")
    results.add_argument("--include-misuse", action="store_true", help="count votes flagged misuse too")

    zone = sub.add_parser("zone", parents=[common], help="set the time zone of a unit's days (they are recounted)")
    zone.add_argument("unit")
    zone.add_argument("tz", help=f"IANA time zone, e.g. {DEFAULT_TZ} (every unit's default)")

    rollup = sub.add_parser("rollup", parents=[common], help="check or rebuild the daily rollup the figures read")
    rollup.add_argument("--rebuild", action="store_true", help="recount every day from the stored votes")

    assign = sub.add_parser("assign", parents=[common], help="place a terminal in a unit")
    assign.add_argument("device")
    assign.add_argument("unit")

    serve = sub.add_parser("serve", parents=[common], help="serve the fleet web (waitress); /metrics for Prometheus")
    _web_args(serve)
    both = sub.add_parser(
        "run", parents=[common], help="run the ingest, the alerts and the fleet web in one process (one machine)"
    )
    _web_args(both)
    _ingest_args(both)
    alerts = sub.add_parser("alerts", parents=[common], help="evaluate and deliver alerts (every alert_interval_s)")
    alerts.add_argument("--settings", type=Path, help="the fleet web's TOML settings file (SMTP, thresholds)")
    alerts.add_argument("--once", action="store_true", help="one round, print what it did, and stop")

    admin = sub.add_parser(
        "create-admin", parents=[common], help="make an IT administrator account (the first one, or another)"
    )
    admin.add_argument("username")
    admin.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from FILE's first line (default: ask, or $HYMY_ADMIN_PASSWORD)",
    )
    admin.add_argument("--lang", default="fi", choices=("fi", "sv", "en"), help="the account's language (fi)")

    move = sub.add_parser(
        "migrate-db",
        parents=[common],
        help="copy a fleet database into another, e.g. SQLite to PostgreSQL (safe to run again)",
    )
    move.add_argument("--from", dest="source", required=True, metavar="DB", help="the database to copy")
    move.add_argument("--to", dest="target", required=True, metavar="DB", help="the database to copy into")

    shots = sub.add_parser(
        "screenshots",
        parents=[common],
        help="save PNGs of the fleet web's main pages in fi, sv and en (headless Chromium; default: a demo fleet)",
    )
    shots.add_argument("dir", type=Path, help="directory to write the PNG files into")

    conf = sub.add_parser(
        "broker-config",
        help="write a production mosquitto.conf, its first dynamic-security file and the fleet's broker login",
    )
    conf.add_argument(
        "dir", type=Path, help="directory to write mosquitto.conf, dynamic-security.json, fleet-broker.toml"
    )
    conf.add_argument("--tls-port", type=int, default=8883, help="the terminals' TLS listener (8883)")
    conf.add_argument("--certfile", default="/etc/mosquitto/certs/broker.pem", help="the broker's certificate (PEM)")
    conf.add_argument("--keyfile", default="/etc/mosquitto/certs/broker.key", help="its private key (PEM)")
    conf.add_argument("--ca-file", default="", help="the CA that signed it, for the fleet's settings when it uses TLS")
    conf.add_argument(
        "--local-port", type=int, default=1883, help="plain listener on 127.0.0.1 for the fleet (0: none)"
    )
    conf.add_argument("--persistence", default="/var/lib/mosquitto", help="the broker's persistence directory")

    themes = sub.add_parser(
        "themes", parents=[common], help="measure the open-feedback theme step, or assign themes to waiting texts"
    )
    from .themes.command import add_arguments as theme_arguments

    theme_arguments(themes)

    push = sub.add_parser("push-config", parents=[common], help="set a terminal's desired configuration")
    push.add_argument("device")
    push.add_argument("version", type=int)
    push.add_argument("--doc", type=Path, help="JSON document (default: the shipped national NPS question)")
    push.add_argument("--unit", help="unit for the default document")
    push.add_argument("--broker", type=_broker, default=None, help="HOST:PORT to publish it to now (retained)")
    return parser


def _web_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="TOML settings (db, secret_key, metrics_token, …; see README); HYMY_* variables override",
    )


def _settings_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--settings",
        type=Path,
        default=_S,
        metavar="FILE",
        help="TOML settings: the broker login (broker_username, broker_password, broker_ca_file, …)",
    )


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", type=_broker, default=_S, help="HOST:PORT (default: the settings' broker_host:port)")
    p.add_argument("--client-id", default=_S, help="MQTT client id (fixed, for a persistent session)")
    p.add_argument("--drain-cap", type=int, default=_S, help=f"most messages per transaction (default {DRAIN_CAP})")
    p.add_argument("--summary-every", type=float, default=_S, metavar="SECONDS", help="log results this often")
    p.add_argument(
        "--share",
        metavar="GROUP",
        default=_S,
        help="join the MQTT 5 shared subscription GROUP, so several ingest processes split the messages",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=_S,
        metavar="N",
        help=f"run N ingest workers on one shared subscription ({DEFAULT_SHARE_GROUP}), restarting any that dies",
    )


def _run_workers(args: argparse.Namespace, n: int) -> int:
    """Supervise N worker processes, each this same command with its own client id, on one share group.

    Shared subscriptions need MQTT 5: on a broker that speaks only MQTT 3.1.1 one ingest runs instead.
    """
    host, port = _broker_login(args).address
    if speaks_mqtt5(host, port) is False:
        log.warning(
            "the broker at %s:%d does not speak MQTT 5, so its subscriptions cannot be shared:"
            " running one ingest instead of %d workers",
            host,
            port,
            n,
        )
        args.workers = 1
        return _run_ingest(args)
    base = getattr(args, "client_id", DEFAULT_CLIENT_ID)
    group = getattr(args, "share", DEFAULT_SHARE_GROUP)

    def worker_argv(i: int) -> list[str]:
        argv = ["--db", str(args.db), "ingest", "--broker", f"{host}:{port}", "--client-id", f"{base}-{i}"]
        if getattr(args, "settings", None):
            argv += ["--settings", str(args.settings)]
        argv += ["--share", group, "--drain-cap", str(getattr(args, "drain_cap", DRAIN_CAP))]
        return argv + (["--verbose"] if getattr(args, "verbose", False) else [])

    supervisor = Supervisor(n, worker_argv)
    _on_stop_signals(supervisor.stop)
    log.info("running %d ingest workers on shared subscription %r at %s:%d", n, group, host, port)
    return supervisor.run()


@dataclass(frozen=True)
class _BrokerLogin:
    """Where and how the fleet logs in to the broker: --broker over the settings, then defaults."""

    address: tuple[str, int]
    username: str
    password: str = field(repr=False)
    ca_file: str

    def credentials(self) -> dict[str, Any]:
        """Keyword arguments for Ingest: the login (if any) and the CA (TLS, if given)."""
        return {
            "username": self.username or None,
            "password": self.password or None,
            "ca_file": self.ca_file or None,
        }


def _broker_login(args: argparse.Namespace, settings: Any = None) -> _BrokerLogin:
    from .web.settings import load_settings

    if settings is None:
        settings = load_settings(getattr(args, "settings", None))
    address = getattr(args, "broker", None) or (settings.broker_host, settings.broker_port)
    return _BrokerLogin(address, settings.broker_username, settings.broker_password, settings.broker_ca_file)


def _on_stop_signals(stop: Callable[[], None]) -> None:
    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _run_ingest(args: argparse.Namespace) -> int:
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    if workers > 1:
        return _run_workers(args, workers)
    login = _broker_login(args)
    host, port = login.address
    every = getattr(args, "summary_every", 0.0)
    share = getattr(args, "share", None)
    store = open_store(args.db)
    ingest = Ingest(
        store,
        host,
        port,
        client_id=getattr(args, "client_id", DEFAULT_CLIENT_ID),
        drain_cap=getattr(args, "drain_cap", DRAIN_CAP),
        protocol=paho.MQTTv5 if share else paho.MQTTv311,
        share_group=share,
        **login.credentials(),
    )
    done = threading.Event()
    _on_stop_signals(done.set)
    log.info("ingesting from %s:%d into %s", host, port, args.db)
    ingest.start()
    # A second connection for summaries, so a long query never holds up ingest (WAL readers don't block).
    reader = open_store(args.db) if every > 0 else None
    try:
        while not done.wait(every if reader else None):
            if reader is not None:
                c = ingest.counters()
                log.info(
                    "%d messages, %d votes stored, %d duplicates, %d acks, rejections %s\n%s",
                    c.messages,
                    c.votes_stored,
                    c.duplicates,
                    c.acks_sent,
                    c.rejections or "none",
                    format_table(scores_by_unit(reader.answer_counts())),
                )
    finally:
        ingest.stop()
        if reader is not None:
            reader.close()
        store.close()
    return 0


def _push_config(args: argparse.Namespace, store: FleetStore) -> int:
    doc = json.loads(args.doc.read_text(encoding="utf-8")) if args.doc else default_config_doc(args.unit)
    config = store.set_config(args.device, args.version, doc)
    if doc.get("unit") is not None:
        store.assign(args.device, doc["unit"])  # the registry and the document name the same unit
    print(f"{args.device}: desired configuration is version {config.version} (unit {doc.get('unit')})")
    if args.broker:
        import paho.mqtt.client as paho

        client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        client.connect(*args.broker)
        client.loop_start()
        info = client.publish(device_topic(args.device, CONFIG), encode(config), qos=1, retain=True)
        info.wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        print(f"published to {args.broker[0]}:{args.broker[1]}" if info.is_published() else "not published")
    return 0


def _serve(args: argparse.Namespace, with_ingest: bool = False) -> int:
    """Serve the fleet web until SIGTERM or Ctrl-C; ``with_ingest``: run the ingest beside it (one machine)."""
    from .web import create_app
    from .web.server import WebServer
    from .web.settings import load_settings

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1…65535, got {args.port}")
    settings = load_settings(args.settings, db=getattr(args, "db", None))
    if settings.broker_accounts == "none":
        log.warning(
            "broker_accounts is none: the fleet keeps no broker logins, so terminals are not confined to"
            ' their own topics; production uses `hymy fleet broker-config` and broker_accounts = "dynsec"'
        )
    app = create_app(settings)
    server = WebServer(app, args.host, args.port)
    done = threading.Event()
    _on_stop_signals(done.set)
    ingest = None
    stops: list[Callable[[], None]] = []
    if with_ingest:
        login = _broker_login(args, settings)
        host, port = login.address
        ingest = Ingest(
            open_store(settings.db),
            host,
            port,
            client_id=getattr(args, "client_id", DEFAULT_CLIENT_ID),
            drain_cap=getattr(args, "drain_cap", DRAIN_CAP),
            **login.credentials(),
        )
        ingest.start()
        log.info("ingesting from %s:%d into %s", host, port, settings.db)
        worker = _alert_worker(app.extensions["hymy_store"], settings)
        worker.start()
        stops.append(worker.stop)
    server.start()
    log.info("serving the fleet web on http://%s:%d/ from %s", args.host, server.port, settings.db)
    try:
        done.wait()
    finally:
        for stop in stops:
            stop()
        server.stop()
        if ingest is not None:
            ingest.stop()
            ingest.store.close()
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    from .brokerconf import BrokerConfig, write

    persistence = args.persistence.rstrip("/")
    c = BrokerConfig(
        tls_port=args.tls_port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        local_port=args.local_port,
        persistence_dir=persistence,
        dynsec_file=f"{persistence}/dynamic-security.json",
    )
    written = write(args.dir, c, ca_file=args.ca_file)
    print(f"wrote {written.config} (the broker's configuration: read its comments)")
    print(f"wrote {written.dynsec} (copy to {c.dynsec_file}, owned by the mosquitto user, mode 600)")
    print(f"wrote {written.fleet_settings} (the fleet's broker login: add its lines to the fleet's settings file)")
    return 0


def _alert_worker(store: Any, settings: Any) -> Any:
    """The alert worker over ``store`` with the web's settings (SMTP, webhook secret, thresholds)."""
    from .alertsend import AlertWorker
    from .db.alerts import Alerts
    from .db.org import Organisation

    return AlertWorker(
        Alerts(store, Organisation(store)), settings.send_settings(), settings.thresholds(), settings.alert_interval_s
    )


def _alerts(args: argparse.Namespace) -> int:
    """Evaluate and deliver alerts: once (printing what happened), or every alert_interval_s until stopped."""
    from .web.settings import load_settings

    settings = load_settings(args.settings, db=getattr(args, "db", None))
    with open_store(settings.db) as store:
        worker = _alert_worker(store, settings)
        if args.once:
            opened, resolved, sent, failed = worker.run_once()
            print(f"alerts: {opened} opened, {resolved} resolved; messages: {sent} sent, {failed} failed")
            return 1 if failed else 0
        done = threading.Event()
        _on_stop_signals(done.set)
        worker.start()
        try:
            done.wait()
        finally:
            worker.stop()
    return 0


def _create_admin(args: argparse.Namespace, store: FleetStore) -> int:
    import getpass
    import os

    from .db.accounts import Accounts
    from .db.store import SqlFleetStore

    if args.password_file is not None:
        lines = args.password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    elif os.environ.get("HYMY_ADMIN_PASSWORD"):
        password = os.environ["HYMY_ADMIN_PASSWORD"]
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("fleet: the passwords differ", file=sys.stderr)
            return 1
    assert isinstance(store, SqlFleetStore)
    try:
        actor = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (a container, say)
        actor = "cli"
    account = Accounts(store).create(actor, args.username, password, "admin", None, args.lang)
    print(f"{account.username}: IT administrator account created; sign in at the fleet web")
    return 0


def _screenshots(args: argparse.Namespace) -> int:
    try:
        from .web.screens import write_screenshots

        paths = write_screenshots(args.dir, getattr(args, "db", None))
    except (ImportError, RuntimeError) as exc:  # no selenium (not in hymy[fleet]) or no Chromium: say which
        print(
            "fleet: screenshots need selenium (pip install 'hymy[all]') and Debian's chromium and chromium-driver:",
            exc,
            file=sys.stderr,
        )
        return 1
    for path in paths:
        print(path)
    return 0


def _migrate_db(source: str, target: str) -> int:
    from .db.copy import copy_database

    report = copy_database(source, target, progress=print)
    if not report.same_figures:
        print("the figures of the two databases DIFFER; see the lines above", file=sys.stderr)
        return 1
    print(f"copied: {sum(report.added.values()):,} rows added; both databases show the same figures")
    return 0


def _rollup(store: FleetStore, *, rebuild: bool) -> int:
    """Rebuild the rollup, or compare it with a recount (read-only: the recount is rolled back)."""
    if rebuild:
        t0 = time.perf_counter()
        rows = store.rebuild_rollup()
        print(f"rollup rebuilt from {store.vote_count():,} votes: {rows:,} rows in {time.perf_counter() - t0:.1f} s")
        return 0
    for name, kept, recounted in (
        ("rollup", store.rollup(), store.recount_rollup()),
        ("hour rollup", store.rollup(hours=True), store.recount_rollup(hours=True)),
    ):
        differ = {k for k in kept.keys() | recounted.keys() if kept.get(k, 0) != recounted.get(k, 0)}
        if differ:
            print(f"{name} differs from a recount of the votes in {len(differ):,} of {len(recounted):,} rows;")
            print("run `hymy fleet rollup --rebuild`")
            return 1
        print(f"{name} agrees with a recount of the votes: {len(kept):,} rows")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m fleet`` and ``hymy fleet``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "db", None) is None and args.command not in (
        "migrate-db",
        "serve",
        "run",
        "screenshots",
        "alerts",
        "broker-config",
        "themes",
    ):
        parser.error("--db PATH_OR_URL is required")
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "verbose", False):
        # Alembic narrates every start (plugins, "Context impl"); only its warnings matter to an operator.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.command in (None, "ingest"):
            return _run_ingest(args)
        if args.command == "migrate-db":
            return _migrate_db(args.source, args.target)
        if args.command == "alerts":
            return _alerts(args)
        if args.command in ("serve", "run"):
            return _serve(args, with_ingest=args.command == "run")
        if args.command == "screenshots":
            return _screenshots(args)
        if args.command == "broker-config":
            return _broker_config(args)
        if args.command == "themes":
            from .themes.command import run as run_themes

            return run_themes(args)
        with open_store(args.db) as store:
            if args.command == "results":
                daily = store.answer_counts(include_misuse=args.include_misuse)
                print(format_table(scores_by_unit(daily)))
            elif args.command == "zone":
                known = args.unit in store.unit_zones()
                store.set_unit_zone(args.unit, args.tz)
                print(f"{args.unit}: days are local days in {args.tz}")
                if not known:
                    print(f"note: no vote or terminal has named unit {args.unit!r} yet (a typo?)", file=sys.stderr)
            elif args.command == "rollup":
                return _rollup(store, rebuild=args.rebuild)
            elif args.command == "assign":
                store.assign(args.device, args.unit)
                print(f"{args.device} -> {args.unit}")
            elif args.command == "push-config":
                return _push_config(args, store)
            elif args.command == "create-admin":
                return _create_admin(args, store)
        return 0
    except (FleetError, ProtocolError, ValueError, OSError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Sample messages of every type, for the protocol tests.

Any test that takes a ``sample`` argument runs once per sample message (see ``pytest_generate_tests``),
so a new message type only needs a sample here to be covered by the round-trip tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    Ack,
    Config,
    ConfigReport,
    FleetState,
    Heartbeat,
    Message,
    TerminalState,
    Vote,
    VoteBatch,
)

DEVICE = "kiosk-001"


def config_doc() -> dict[str, Any]:
    """A valid configuration document using every key."""
    return {
        "unit": "hus-meilahti-er",
        "languages": ["fi", "sv", "en"],
        "default_language": "fi",
        "question": {
            "id": "thl-nps",
            "scale": "nps11",
            "text": {
                "fi": "Kuinka todennäköisesti suosittelisit palveluamme läheisellesi?",
                "sv": "Hur sannolikt är det att du skulle rekommendera vår tjänst till en närstående?",
                "en": "How likely are you to recommend our service to someone close to you?",
            },
            "sources": {"fi": "THL:n suositus", "sv": "THL:s rekommendation"},
            "review": ["en"],
        },
        "misuse_interval_s": 2.5,
        "thanks_s": 5,
    }


def vote(seq: int = 1, **changes: Any) -> Vote:
    """A plain synchronised NPS vote; ``changes`` override its fields."""
    base = Vote(
        seq=seq,
        question="thl-nps",
        scale="nps11",
        answer=9,
        lang="fi",
        wall=1_700_000_000_000 + seq,
        mono=60_000 + seq,
        boot="3f2a9c1e-boot",
        synced=True,
    )
    return base._replace(**changes)


def samples() -> dict[str, Message]:
    """One or more sample messages of every type, keyed by a readable name."""
    return {
        "votes_minimal": VoteBatch(DEVICE, 0, (vote(1),)),
        "votes_every_field": VoteBatch(
            DEVICE,
            7,
            (
                vote(
                    41,
                    unit="hus-meilahti-er",
                    cfg=3,
                    flags=frozenset({"misuse", "after_hours", "historical"}),
                    role="relative",
                    reason="waiting-time",
                ),
                vote(42, scale="faces4", answer=0, lang="sv", synced=False, wall=0, role="client"),
                vote(43, scale="faces5", answer=4, lang="en-GB", role="other"),
                vote(44, scale="agree5", answer=2, lang="se"),
            ),
        ),
        "votes_with_store": VoteBatch(DEVICE, 3, (vote(5), vote(6)), store="3f9a0c1e7b2d4a65"),
        "votes_limits": VoteBatch(DEVICE, 2**53 - 1, (vote(2**53 - 1, wall=2**53 - 1, mono=2**53 - 1),)),
        "ack_one_range": Ack(DEVICE, 7, ((41, 44),)),
        "ack_many_ranges": Ack(DEVICE, 8, ((1, 3), (7, 7), (9, 12))),
        "ack_store_and_refusals": Ack(
            DEVICE,
            9,
            ((45, 47), (53, 53)),
            store="3f9a0c1e7b2d4a65",
            refused=(("invalid", ((50, 52),)), ("conflict", ((48, 49),))),
        ),
        "ack_refusals_only": Ack(DEVICE, 10, (), refused=(("conflict", ((7, 7),)),)),
        "state_online": TerminalState(DEVICE, online=True, conn=12, wall=1_700_000_000_000, fw="0.1.0"),
        "state_will": TerminalState(DEVICE, online=False, conn=12, wall=1_700_000_000_000),
        "heartbeat_full": Heartbeat(
            DEVICE,
            wall=1_700_000_060_000,
            mono=120_000,
            boot="3f2a9c1e-boot",
            synced=True,
            uptime=120,
            queue=3,
            oldest=45,
            cfg=3,
            fw="0.1.0",
            temp=51.5,
            disk=2048,
        ),
        "heartbeat_int_temp": Heartbeat(
            DEVICE, 1, 2, "b", False, uptime=0, queue=0, oldest=None, cfg=0, fw="0.1.0", temp=45
        ),
        "heartbeat_refused": Heartbeat(
            DEVICE, 1, 2, "b", True, uptime=5, queue=1, oldest=3, cfg=1, fw="0.2.0", refused=4
        ),
        "heartbeat_minimal": Heartbeat(DEVICE, 1, 2, "b", False, uptime=0, queue=0, oldest=None, cfg=0, fw=""),
        "config": Config(DEVICE, 3, config_doc()),
        "config_report_applied": ConfigReport(DEVICE, 3, "applied"),
        "config_report_rejected": ConfigReport(DEVICE, 4, "rejected", "configuration: unknown scale 'stars7'"),
        "fleet_online": FleetState(online=True, wall=1_700_000_000_000, instance="ingest-1"),
        "fleet_will": FleetState(online=False, wall=0, instance="ingest-1"),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``sample`` once per sample message."""
    if "sample" in metafunc.fixturenames:
        named = samples()
        metafunc.parametrize("sample", list(named.values()), ids=list(named))

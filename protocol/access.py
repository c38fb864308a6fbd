"""Who may publish and subscribe where: the broker's access rules as plain data.

Guarantee 6 ("nobody speaks for another terminal") rests on the broker refusing what the contract
does not allow, not on clients behaving. The fleet turns these rules into the broker's own
configuration (Mosquitto's dynamic-security roles, or an ``acl_file``), the SPEC prints them, and
the security tests check the broker against them, so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import topics

PUBLISH = "publish"
SUBSCRIBE = "subscribe"


@dataclass(frozen=True, slots=True)
class Rule:
    """Allow ``action`` (publish or subscribe) on ``topic`` (an MQTT topic or filter)."""

    action: str
    topic: str


def terminal_rules(device: str) -> tuple[Rule, ...]:
    """Everything terminal ``device`` may do; anything else is refused.

    It publishes its own votes, state (and will), heartbeat and configuration report, and reads its
    own acks and configuration and the fleet's state. It can neither read another terminal's acks
    nor publish an ack, a configuration or the fleet state, anywhere.
    """
    return _rules(topics.check_device_id(device))


def _rules(segment: str) -> tuple[Rule, ...]:
    own = [Rule(PUBLISH, f"{topics.ROOT}/{segment}/{kind}") for kind in topics.TERMINAL_PUBLISHES]
    reads = [Rule(SUBSCRIBE, f"{topics.ROOT}/{segment}/{kind}") for kind in topics.FLEET_PUBLISHES]
    return (*own, *reads, Rule(SUBSCRIBE, topics.FLEET_STATE))


def fleet_rules() -> tuple[Rule, ...]:
    """What the fleet's own account may do: read every terminal's messages, publish acks, configs and its state."""
    reads = [Rule(SUBSCRIBE, topics.subscription(kind)) for kind in topics.TERMINAL_PUBLISHES]
    writes = [Rule(PUBLISH, topics.subscription(kind)) for kind in topics.FLEET_PUBLISHES]
    return (*reads, *writes, Rule(PUBLISH, topics.FLEET_STATE))


def acl_file_text(fleet_username: str) -> str:
    """The same rules as a Mosquitto ``acl_file`` (for brokers without the dynamic-security plugin).

    Patterns use ``%u``, so each terminal's username must equal its device id and, because a
    client id can be chosen freely, the listener should set ``use_username_as_clientid true``.
    """
    lines = ["# Hymy: every terminal, confined to its own topics (its username is its device id)"]
    for rule in _rules("%u"):
        lines.append(f"pattern {'write' if rule.action == PUBLISH else 'read'} {rule.topic}")
    lines += ["", "# the fleet's own account", f"user {fleet_username}"]
    for rule in fleet_rules():
        lines.append(f"topic {'write' if rule.action == PUBLISH else 'read'} {rule.topic}")
    return "\n".join(lines) + "\n"

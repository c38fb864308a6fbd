"""Every numeric limit of the contract in one place, so the SPEC and the codec cannot drift."""

from __future__ import annotations

#: Schema versions this implementation speaks. A message with any other ``v`` is rejected.
SUPPORTED_VERSIONS = frozenset({1})
#: The version this implementation writes.
CURRENT_VERSION = 1

#: Largest payload, in bytes, of any message.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Most votes in one batch.
MAX_BATCH_VOTES = 500
#: Largest encoded configuration document, in bytes.
MAX_CONFIG_DOC_BYTES = 64 * 1024
#: Longest identifier (question, unit, boot and reason ids), and the fleet's instance name.
MAX_ID = 64
#: Longest firmware version text (state and heartbeat ``fw``).
MAX_FW = 32
#: Longest reason text of a rejected configuration (config_report ``reason``).
MAX_REPORT_REASON = 500
#: Most languages in one configuration document.
MAX_LANGUAGES = 16
#: Longest question text in one language.
MAX_QUESTION_TEXT = 300
#: Longest source note in one language.
MAX_SOURCE_TEXT = 500
#: Largest integer a JSON peer can hold exactly (IEEE double), for seqs and times.
MAX_INT = 2**53 - 1
#: Most seq ranges in one acknowledgement.
MAX_ACK_RANGES = MAX_BATCH_VOTES
#: Most refusal objects in one acknowledgement (each reason at most once).
MAX_REFUSALS = 8
#: Most flags on one vote.
MAX_FLAGS = 8
#: Longest interface text (a configured UI string or a follow-up choice).
MAX_UI_TEXT = 120
#: Longest open-feedback web address.
MAX_URL = 300

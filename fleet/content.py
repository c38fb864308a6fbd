"""The shipped default configuration: THL's national NPS question in Finnish, Swedish and English.

Each text keeps its source beside it. THL's own Swedish wording was not available, so the
Swedish text is our careful translation, listed under ``review`` until a native speaker has
checked it; replacing it is a data change here, not a code change. Sámi texts arrive as
configuration from the regions that supply them and are never invented here.
"""

from __future__ import annotations

import copy
from typing import Any

from protocol import validate_config_doc

NPS_QUESTION_ID = "thl-nps"

_DEFAULT_DOC: dict[str, Any] = {
    "unit": None,
    "languages": ["fi", "sv", "en"],
    "default_language": "fi",
    "question": {
        "id": NPS_QUESTION_ID,
        "scale": "nps11",
        "text": {
            "fi": "Kuinka todennäköisesti suosittelisit saamaasi palvelua läheisellesi tai ystävällesi?",
            "sv": "Hur sannolikt är det att du skulle rekommendera den tjänst du fått till en närstående eller vän?",
            "en": "How likely would you be to recommend the service you received to a family member or friend "
            "in the same situation?",
        },
        "sources": {
            "fi": "Pohjanmaa wellbeing services county (Pohjanmaan hyvinvointialue), wording as used in its "
            "customer feedback",
            "sv": "Hymy project translation from the Finnish and English texts; THL's Swedish wording was "
            "not available. Awaiting review by a native speaker.",
            "en": "THL, national customer feedback model, mental health services page",
        },
        "review": ["sv"],
    },
    "misuse_interval_s": 2.0,
    "thanks_s": 5.0,
}


def default_config_doc(unit: str | None = None) -> dict[str, Any]:
    """A fresh copy of the default document (optionally for one unit), valid by the protocol's rules."""
    doc = copy.deepcopy(_DEFAULT_DOC)
    doc["unit"] = unit
    return validate_config_doc(doc)

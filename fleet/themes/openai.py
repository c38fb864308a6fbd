"""The theme step on a county's own AI service: an OpenAI-compatible chat-completions endpoint.

Texts go, already redacted, only to the URL the county configured (inside its own network), in
batches. The model is told the themes and tones of docs/themes-labelling.md, shown the newest staff
corrections as worked examples, and asked for JSON only. Whatever goes wrong on the way (the service
down or slow, an HTTP error, an answer that cannot be read) becomes a :class:`ThemeError` whose
message names neither the API key nor the texts; an unknown theme id is only dropped, since the
rest of the answer is still good.

Standard library only: the fleet server needs no HTTP client dependency for one POST.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import THEMES, TONES, Assignment, Example, Text, ThemeError

log = logging.getLogger(__name__)

#: What each theme covers and what it does not, as in docs/themes-labelling.md (a test compares them).
THEME_GUIDE = {
    "waiting": (
        'waiting time on site, queues, delays, being seen on time or late, "nopeasti pääsin"',
        "waiting on the phone line (`phone`), weeks until an appointment (`appointments`)",
    ),
    "friendliness": (
        "how staff treated the person: kindness, respect, rudeness, being listened to, empathy",
        "competence of the treatment itself (`care`)",
    ),
    "information": (
        "explanations, instructions, being told what happens next, test results communicated, unclear letters",
        "signage to find the room (`facilities`)",
    ),
    "facilities": (
        "premises, cleanliness, toilets, temperature, seating, noise, signage, accessibility of the building, "
        "coffee/water",
        "parking (`parking`)",
    ),
    "phone": ("reaching the unit by phone, call-back service, phone queue, nobody answers", ""),
    "appointments": (
        "getting an appointment, booking, rescheduling, cancellations, how long until an appointment",
        "booking online (`digital` too, both)",
    ),
    "parking": ("parking spaces, parking fees, getting there by car or bus, distance to the unit", ""),
    "care": (
        "quality and competence of the care or treatment, examination, diagnosis, medication, outcome, "
        "continuity of care (same doctor)",
        "kindness (`friendliness`)",
    ),
    "language": (
        "service in one's own language (Swedish, Finnish, English, sign language), interpreters",
        "",
    ),
    "digital": (
        "online services: web booking, Omaolo, chat, apps, e-mail/text-message reminders, self check-in kiosks",
        "",
    ),
}
#: What each tone means, as in docs/themes-labelling.md.
TONE_GUIDE = {
    "positive": "only praise or satisfaction.",
    "negative": "only criticism, complaint or a wish that something were better.",
    "mixed": "both praise and criticism in the same text.",
}

#: Staff corrections shown to the model (the newest ones): enough to steer it, few enough to stay cheap.
MAX_EXAMPLES = 20
#: How much of a stray theme id or tone a log line or error message shows.
SHOWN = 24

_FENCED = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class OpenAISettings:
    """Where the county's service is and how to call it."""

    url: str  # base URL, e.g. "http://ai.county.local:8000/v1"; requests go to {url}/chat/completions
    model: str
    api_key: str = field(default="", repr=False)  # sent as a bearer token when set; never logged
    timeout_s: float = 20.0  # per connect and per read
    batch: int = 20  # texts per request

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"openai url must start with http:// or https://, not {self.url[:SHOWN]!r}")
        if not self.model:
            raise ValueError("openai model must be named")
        if self.timeout_s <= 0:
            raise ValueError(f"openai timeout_s must be positive, not {self.timeout_s}")
        if self.batch < 1:
            raise ValueError(f"openai batch must be at least 1, not {self.batch}")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL."""
        return self.url.rstrip("/") + "/chat/completions"


class OpenAIThemes:
    """Assigns themes and a tone with a county's OpenAI-compatible chat-completions service."""

    name = "openai"

    def __init__(self, settings: OpenAISettings, examples: Sequence[Example] = ()) -> None:
        self.settings = settings
        self.method = f"{self.name}:{settings.model}"
        self.examples = tuple(examples)[-MAX_EXAMPLES:]

    def assign(self, texts: Sequence[Text]) -> list[Assignment]:
        """Themes and tone for each text, in order; one request per batch of texts."""
        out: list[Assignment] = []
        step = self.settings.batch
        for start in range(0, len(texts), step):
            out.extend(self._assign_batch(texts[start : start + step]))
        return out

    def _assign_batch(self, texts: Sequence[Text]) -> list[Assignment]:
        content = _post(self.settings, request_body(self.settings.model, texts, self.examples))
        return [Assignment(themes, tone, self.method) for themes, tone in read_results(content, len(texts))]


def system_prompt() -> str:
    """The instructions: the themes and tones of docs/themes-labelling.md, and the JSON to answer with."""
    themes = "\n".join(
        f"- {theme}: {covers}." + (f" Not: {not_this}." if not_this else "")
        for theme, (covers, not_this) in THEME_GUIDE.items()
    )
    tones = "\n".join(f"- {tone}: {meaning}" for tone, meaning in TONE_GUIDE.items())
    return (
        "You label open feedback that patients and clients left at Finnish public health and social care units. "
        "The texts are in Finnish, Swedish or English and have been redacted.\n"
        "Give each text zero or more themes and exactly one tone.\n\n"
        f"Themes (use only these ids):\n{themes}\n"
        'A text may have no theme (for example "Kiitos!" or "Ei kommentoitavaa").\n\n'
        f"Tone (exactly one):\n{tones}\n"
        "A text with no evaluation at all is labelled by what it implies: a suggestion is negative.\n\n"
        "Answer with JSON only, no other text, one result per text:\n"
        '{"results": [{"i": <the text\'s number>, "themes": [<theme ids>], "tone": "<tone>"}]}'
    )


def user_message(texts: Sequence[Text | Example]) -> str:
    """The texts to label, numbered from 0, one per line (each quoted, so a line break stays inside it)."""
    lines = [f"{i} ({t.lang}): {json.dumps(t.text, ensure_ascii=False)}" for i, t in enumerate(texts)]
    return f"Label these {len(texts)} texts.\n" + "\n".join(lines)


def request_body(model: str, texts: Sequence[Text], examples: Sequence[Example] = ()) -> dict[str, Any]:
    """The chat-completions request: instructions, each example as a question answered, then the texts."""
    messages = [{"role": "system", "content": system_prompt()}]
    for example in examples:
        answer = {"results": [{"i": 0, "themes": list(example.themes), "tone": example.tone}]}
        messages.append({"role": "user", "content": user_message([example])})
        messages.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
    messages.append({"role": "user", "content": user_message(texts)})
    return {
        "model": model,
        "temperature": 0,
        "messages": messages,
        "response_format": {"type": "json_object"},
    }


def read_results(content: str, count: int) -> list[tuple[tuple[str, ...], str]]:
    """The (themes, tone) of each of ``count`` texts from the model's answer; ThemeError if unreadable."""
    fenced = _FENCED.match(content.strip())
    try:
        answer = json.loads(fenced.group(1) if fenced else content)
    except ValueError:
        raise ThemeError("openai service's answer is not JSON") from None
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise ThemeError('openai service\'s answer has no "results" list')
    by_index: dict[int, tuple[tuple[str, ...], str]] = {}
    unknown: list[str] = []
    for result in results:
        index = result.get("i") if isinstance(result, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            raise ThemeError(f"openai service gave a result without a text number from 0 to {count - 1}")
        if index in by_index:
            raise ThemeError(f"openai service gave text {index} more than one result")
        by_index[index] = (_themes(result.get("themes"), index, unknown), _tone(result.get("tone"), index))
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise ThemeError(f"openai service gave {len(by_index)} results for {count} texts (missing text {missing[0]})")
    if unknown:
        log.warning(
            "openai service gave %d unknown theme ids, dropped: %s",
            len(unknown),
            ", ".join(repr(u[:SHOWN]) for u in dict.fromkeys(unknown)),
        )
    return [by_index[i] for i in range(count)]


def _themes(given: Any, index: int, unknown: list[str]) -> tuple[str, ...]:
    """Known theme ids in THEMES order, once each; unknown ones are added to ``unknown``."""
    if given is None:
        return ()
    if not isinstance(given, list):
        raise ThemeError(f"openai service gave text {index} themes that are not a list")
    chosen = set()
    for theme in given:
        key = theme.strip().lower() if isinstance(theme, str) else theme
        if key in THEMES:
            chosen.add(key)
        else:
            unknown.append(str(theme))
    return tuple(t for t in THEMES if t in chosen)


def _tone(given: Any, index: int) -> str:
    tone = given.strip().lower() if isinstance(given, str) else given
    if tone not in TONES:
        shown = "no tone" if given is None else f"tone {str(given)[:SHOWN]!r}"
        raise ThemeError(f"openai service gave text {index} {shown}, not one of {', '.join(TONES)}")
    return str(tone)


def _post(settings: OpenAISettings, body: dict[str, Any]) -> str:
    """POST the request and return the first choice's message content; ThemeError for any failure."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    where = settings.endpoint
    request = urllib.request.Request(where, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # its body may echo the texts: not read, not shown
        raise ThemeError(f"openai service at {where} answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ThemeError(f"openai service at {where} did not answer within {settings.timeout_s:g} s") from exc
        raise ThemeError(f"openai service at {where} is unreachable: {exc.reason}") from exc
    except TimeoutError as exc:
        raise ThemeError(f"openai service at {where} did not answer within {settings.timeout_s:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ThemeError(f"openai service at {where} broke off: {type(exc).__name__}") from exc
    try:
        choice = json.loads(raw)["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, LookupError, TypeError):
        raise ThemeError(f"openai service at {where} did not answer with a chat completion") from None
    if not isinstance(content, str):
        raise ThemeError(f"openai service at {where} answered without content")
    if choice.get("finish_reason") == "length":
        log.warning("openai service cut its answer short (finish_reason length); lower the batch size")
    log.debug("openai service answered %d bytes", len(raw))
    return content

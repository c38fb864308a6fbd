"""The OpenAI-compatible theme adapter against a real local HTTP server speaking chat completions."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fleet.themes.model import THEMES, TONES, Assignment, Example, Text, ThemeError
from fleet.themes.openai import MAX_EXAMPLES, THEME_GUIDE, TONE_GUIDE, OpenAISettings, OpenAIThemes, system_prompt

KEY = "sk-county-secret-4711"
SECRET_TEXT = "Hoitaja Virtanen oli töykeä"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "themes-labelling.md"
_LINE = re.compile(r'^(\d+) \((\w+)\): (".*")$', re.MULTILINE)


@dataclass
class Reply:
    """What the fake service answers: a status, a body, and how long it waits first."""

    body: bytes
    status: int = 200
    delay_s: float = 0.0


@dataclass
class Received:
    """One request the fake service got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def texts(self) -> list[tuple[int, str, str]]:
        """The numbered texts of the last user message: (number, lang, text)."""
        last = self.body["messages"][-1]["content"]
        return [(int(i), lang, json.loads(quoted)) for i, lang, quoted in _LINE.findall(last)]


def completion(content: str) -> bytes:
    """A chat-completions response whose first choice says ``content``."""
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return json.dumps({"id": "c-1", "object": "chat.completion", "choices": [choice]}).encode()


def results(*items: tuple[list[str], str]) -> str:
    """The JSON a well-behaved model gives: one result per (themes, tone), numbered in order."""
    return json.dumps({"results": [{"i": i, "themes": th, "tone": to} for i, (th, to) in enumerate(items)]})


def by_text(request: Received) -> Reply:
    """A model that answers every text it is sent: tone by the number at the end of the text, in reverse order."""
    answer = [
        {"i": i, "themes": ["waiting"], "tone": TONES[int(text.split()[-1]) % 3]}
        for i, _, text in reversed(request.texts())
    ]
    return Reply(completion(json.dumps({"results": answer})))


@dataclass
class FakeAIService:
    """A chat-completions service on a loopback port: records requests, answers with ``reply``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    reply: Callable[[Received], Reply] = by_text

    def answer(self, reply: Reply) -> None:
        """Answer every request with ``reply``."""
        self.reply = lambda _request: reply


@pytest.fixture
def ai_service() -> Iterator[FakeAIService]:
    """A fake OpenAI-compatible service at http://127.0.0.1:<port>/v1, stopped after the test."""
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            received = Received(self.path, dict(self.headers), json.loads(self.rfile.read(size)))
            service.requests.append(received)
            reply = service.reply(received)
            if stopping.wait(reply.delay_s):
                return  # the test is over; the client gave up long ago
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            try:
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service = FakeAIService(f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


def themes_for(service: FakeAIService, examples: list[Example] | None = None, **settings: Any) -> OpenAIThemes:
    """The adapter pointed at ``service`` with the county's key."""
    return OpenAIThemes(OpenAISettings(service.url, "county-llm", api_key=KEY, **settings), examples or [])


def test_request_posts_model_key_and_every_text_to_chat_completions(ai_service: FakeAIService) -> None:
    texts = [Text("fi", "Jono oli pitkä 0"), Text("sv", "Trevlig personal 1"), Text("en", 'Line\nbreak "quoted" 2')]
    themes_for(ai_service).assign(texts)
    (request,) = ai_service.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body["model"] == "county-llm"
    assert request.body["temperature"] == 0
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["messages"][0] == {"role": "system", "content": system_prompt()}
    assert request.texts() == [(i, t.lang, t.text) for i, t in enumerate(texts)]


def test_request_has_no_authorization_header_without_a_key(ai_service: FakeAIService) -> None:
    OpenAIThemes(OpenAISettings(ai_service.url + "/", "m")).assign([Text("fi", "Hyvä 0")])
    (request,) = ai_service.requests
    assert request.path == "/v1/chat/completions"
    assert "Authorization" not in request.headers


def test_staff_corrections_are_sent_as_answered_examples_newest_last(ai_service: FakeAIService) -> None:
    corrections = [Example("fi", f"Korjaus {n}", ("parking",) if n % 2 else (), TONES[n % 3]) for n in range(25)]
    themes_for(ai_service, corrections).assign([Text("fi", "Uusi teksti 0")])
    messages = ai_service.requests[0].body["messages"]
    shots = messages[1:-1]
    assert len(shots) == 2 * MAX_EXAMPLES
    assert [m["role"] for m in shots] == ["user", "assistant"] * MAX_EXAMPLES
    for n, (question, answer) in zip(range(5, 25), zip(shots[::2], shots[1::2], strict=True), strict=True):
        assert f'"Korjaus {n}"' in question["content"]
        labels = json.loads(answer["content"])["results"]
        assert labels == [{"i": 0, "themes": ["parking"] if n % 2 else [], "tone": TONES[n % 3]}]
    assert "Korjaus 4" not in json.dumps(messages)
    assert messages[-1]["role"] == "user" and '"Uusi teksti 0"' in messages[-1]["content"]


def test_system_prompt_defines_the_themes_and_tones_of_the_labelling_guide() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|\s*(.*?)\s*\|\s*(.*?)\s*\|$", guide, re.MULTILINE)
    assert {theme: (covers, not_this) for theme, covers, not_this in rows} == THEME_GUIDE
    assert tuple(THEME_GUIDE) == THEMES
    tones = dict(re.findall(r"^- `(\w+)`: (.*)$", guide, re.MULTILINE))
    assert tones == TONE_GUIDE
    assert tuple(TONE_GUIDE) == TONES
    prompt = system_prompt()
    for theme, (covers, _) in THEME_GUIDE.items():
        assert f"- {theme}: {covers}" in prompt
    for tone, meaning in TONE_GUIDE.items():
        assert f"- {tone}: {meaning}" in prompt
    assert "JSON only" in prompt


def test_answer_becomes_assignments_with_themes_in_order_once_each(ai_service: FakeAIService) -> None:
    content = results(
        (["care", "waiting", "care", "friendliness"], "mixed"),
        ([], "positive"),
        (["Phone "], " Negative"),
    )
    ai_service.answer(Reply(completion(content)))
    got = themes_for(ai_service).assign([Text("fi", "a"), Text("fi", "b"), Text("fi", "c")])
    assert got == [
        Assignment(("waiting", "friendliness", "care"), "mixed", "openai:county-llm"),
        Assignment((), "positive", "openai:county-llm"),
        Assignment(("phone",), "negative", "openai:county-llm"),
    ]


def test_answer_in_json_fences_is_accepted(ai_service: FakeAIService) -> None:
    content = "```json\n" + results((["parking"], "negative")) + "\n```\n"
    ai_service.answer(Reply(completion(content)))
    got = themes_for(ai_service).assign([Text("fi", "Ei parkkipaikkoja")])
    assert got == [Assignment(("parking",), "negative", "openai:county-llm")]


def test_unknown_theme_ids_are_dropped_and_counted_in_a_warning(
    ai_service: FakeAIService, caplog: pytest.LogCaptureFixture
) -> None:
    long_id = "staff_attitude_and_general_behaviour_of_the_nurses"
    content = results((["waiting", "food", long_id], "negative"), (["food"], "positive"))
    ai_service.answer(Reply(completion(content)))
    with caplog.at_level(logging.WARNING, logger="fleet.themes.openai"):
        got = themes_for(ai_service).assign([Text("fi", "a"), Text("fi", "b")])
    assert [a.themes for a in got] == [("waiting",), ()]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "3 unknown theme ids" in record.getMessage()
    assert "'food'" in record.getMessage()
    assert long_id[:24] in record.getMessage() and long_id not in record.getMessage()


def test_texts_go_in_batches_and_results_keep_their_order(ai_service: FakeAIService) -> None:
    texts = [Text("fi", f"Palaute numero {n}") for n in range(45)]
    got = themes_for(ai_service, batch=20).assign(texts)
    assert [len(r.texts()) for r in ai_service.requests] == [20, 20, 5]
    sent = [text for r in ai_service.requests for _, _, text in r.texts()]
    assert sent == [t.text for t in texts]
    assert [a.tone for a in got] == [TONES[n % 3] for n in range(45)]


def test_no_texts_make_no_request(ai_service: FakeAIService) -> None:
    assert themes_for(ai_service).assign([]) == []
    assert ai_service.requests == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(b'{"error": "overloaded"}', status=500), "HTTP 500"),
        (Reply(b"<html>502 Bad Gateway</html>"), "did not answer with a chat completion"),
        (Reply(json.dumps({"choices": []}).encode()), "did not answer with a chat completion"),
        (Reply(completion("Sure! Here are the labels: waiting, care.")), "not JSON"),
        (Reply(completion('{"labels": []}')), 'no "results" list'),
        (Reply(completion(results(([], "positive")))), "1 results for 2 texts"),
        (Reply(completion(results(([], "positive"), ([], "positive"), ([], "negative")))), "text number from 0 to 1"),
        (Reply(completion(results(([], "positive"), ([], "angry")))), "tone 'angry'"),
        (Reply(completion('{"results": [{"i": 0, "themes": []}, {"i": 1, "tone": "mixed"}]}')), "no tone"),
        (Reply(completion('{"results": [{"i": 0, "tone": "mixed"}, {"i": 0, "tone": "mixed"}]}')), "more than one"),
    ],
    ids=[
        "http-500",
        "garbage-body",
        "no-choices",
        "prose-content",
        "no-results",
        "too-few-results",
        "too-many-results",
        "bad-tone",
        "missing-tone",
        "repeated-index",
    ],
)
def test_unusable_answers_raise_theme_error_naming_neither_key_nor_texts(
    ai_service: FakeAIService, reply: Reply, message: str
) -> None:
    ai_service.answer(reply)
    with pytest.raises(ThemeError, match=re.escape(message)) as raised:
        themes_for(ai_service).assign([Text("fi", SECRET_TEXT), Text("fi", "toinen")])
    assert KEY not in str(raised.value) and SECRET_TEXT not in str(raised.value)


def test_a_service_slower_than_the_timeout_raises_theme_error(ai_service: FakeAIService) -> None:
    ai_service.answer(Reply(completion(results(([], "positive"))), delay_s=5.0))
    with pytest.raises(ThemeError, match=r"did not answer within 0\.5 s") as raised:
        themes_for(ai_service, timeout_s=0.5).assign([Text("fi", SECRET_TEXT)])
    assert KEY not in str(raised.value) and SECRET_TEXT not in str(raised.value)


def test_nothing_listening_raises_theme_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = OpenAISettings(f"http://127.0.0.1:{port}/v1", "county-llm", api_key=KEY, timeout_s=2)
    with pytest.raises(ThemeError, match="unreachable") as raised:
        OpenAIThemes(settings).assign([Text("fi", SECRET_TEXT)])
    assert KEY not in str(raised.value) and SECRET_TEXT not in str(raised.value)


def test_the_key_is_never_logged_nor_shown_in_the_settings(
    ai_service: FakeAIService, caplog: pytest.LogCaptureFixture
) -> None:
    ai_service.answer(Reply(completion(results((["nonsense"], "positive")))))
    with caplog.at_level(logging.DEBUG):
        themes_for(ai_service).assign([Text("fi", "a")])
    assert caplog.records and KEY not in caplog.text
    assert KEY not in repr(OpenAISettings("http://ai.county.local/v1", "m", api_key=KEY))


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "ai.county.local/v1"},
        {"model": ""},
        {"timeout_s": 0},
        {"batch": 0},
    ],
)
def test_impossible_settings_raise_value_error(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OpenAISettings(**{"url": "http://ai.county.local/v1", "model": "m", **settings})

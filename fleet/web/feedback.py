"""The open-feedback form behind each unit's QR code: ``/f/<code>``, public, anonymous, one page.

``<code>`` is a unit's code, or a location's (the answer goes to its unit and notes the location).
The form asks the unit's configured question on its scale, who is answering and an optional text,
in the person's language among the unit's configured ones (``?lang=``, else the browser's
preference, else the unit's default). Finnish, Swedish and English come from the fleet's catalogs;
another language added to the configuration as data brings the question and the terminal's texts
(roles, scale ends, faces, thanks), and the form's few own sentences fall back to English, marked
as such for screen readers.

It works without JavaScript and takes no account, no cookie but the session that holds the CSRF
token, and stores no address (``fleet/feedback.py`` limits floods in memory). A honeypot field that
people never see catches simple bots: their answer is thanked for and not stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.wrappers.response import Response as BaseResponse

from protocol.messages import ROLES
from protocol.scales import SCALES

from ..db.feedback import Answer
from ..feedback import HONEYPOT, INVALID, RATE_ADDRESS, FeedbackService
from ..org import LOCATION, UNIT, OrgNode
from . import extension
from .access import public
from .i18n import LOCALES

bp = Blueprint("feedback", __name__, url_prefix="/f")

#: The largest form body accepted (the text limit is in characters; this caps the request itself).
MAX_BODY = 64 * 1024
#: The honeypot: a field hidden from people by the style sheet, which simple bots fill in.
HONEYPOT_FIELD = "website"
ROLE_ORDER = ("client", "relative", "other")
#: The faces a four-face scale shows (no middle face), as the terminal does.
FACES = {4: (0, 1, 3, 4), 5: (0, 1, 2, 3, 4)}


@dataclass(frozen=True, slots=True)
class Said:
    """A text and the language it is in (a fallback's differs from the page's)."""

    text: str
    lang: str


@dataclass(frozen=True, slots=True)
class Form:
    """What a form page shows for one unit in one language."""

    unit: OrgNode
    location: OrgNode | None
    code: str
    lang: str
    languages: list[tuple[str, str]]  # (code, name in itself)
    question: Said
    question_id: str
    scale: str
    options: list[tuple[int, Said]]  # (answer, label)
    low: Said | None
    high: Said | None
    t: dict[str, Said]


def service() -> FeedbackService:
    """The app's open-feedback service."""
    return current_app.extensions["hymy_feedback"]  # type: ignore[no-any-return]


def _target(code: str) -> tuple[OrgNode, OrgNode | None]:
    """The unit (and location) a form address names; 404 for anything else."""
    tree = extension("org").tree()
    node = tree.by_code.get(code)
    if node is None or node.archived or node.kind not in (UNIT, LOCATION):
        abort(404)
    if node.kind == UNIT:
        return node, None
    unit = tree.nodes.get(node.parent_id) if node.parent_id is not None else None
    if unit is None or unit.archived:
        abort(404)
    return unit, node


def _language(doc: dict[str, Any]) -> str:
    langs = list(doc["languages"])
    asked = request.values.get("lang", "")
    if asked in langs:
        return asked
    return request.accept_languages.best_match(langs) or str(doc["default_language"])


def _own_texts() -> dict[str, str]:
    """The form's own sentences (from the catalogs, in the locale forced around the call)."""
    limit = current_app.config["HYMY"].feedback_max_text
    return {
        "title": _("Feedback"),
        "intro": _("Anonymous. It takes less than a minute. Every answer is read."),
        "score_missing": _("Choose an answer, or write your feedback below."),
        "role_question": _("Who is answering?"),
        "role_client": _("Client or patient"),
        "role_relative": _("Relative or close person"),
        "role_other": _("Other"),
        "text_label": _("Tell us more (optional)"),
        "notice": _(
            "Do not write health information or anything that identifies you or anyone else, such as names, "
            "identity codes, phone numbers or addresses. This form gets no reply: for a reply or a complaint, "
            "contact the unit."
        ),
        "text_hint": _(
            "At most %(n)s characters. Identity codes, phone numbers, e-mail and street addresses are removed "
            "before the text is saved.",
            n=limit,
        ),
        "send": _("Send"),
        "too_long": _("The text is too long: at most %(n)s characters.", n=limit),
        "thanks": _("Thank you for your feedback!"),
        "thanks_body": _("Your answer has been saved. You can close this page."),
        "again": _("Give more feedback"),
        "busy_title": _("Please try again later"),
        "busy_body": _("The form has received very many answers in a short time and takes no more for a while."),
        "busy_address": _(
            "Very many answers have come from your network in a short time. Please try again in a few minutes."
        ),
        "languages": _("Language"),
        "skip": _("Skip to the form"),
        "nps_low": _("Not at all likely"),
        "nps_high": _("Extremely likely"),
        "face_0": _("Very dissatisfied"),
        "face_1": _("Dissatisfied"),
        "face_2": _("Neither satisfied nor dissatisfied"),
        "face_3": _("Satisfied"),
        "face_4": _("Very satisfied"),
        "agree_0": _("Strongly disagree"),
        "agree_1": _("Disagree"),
        "agree_2": _("Neither agree nor disagree"),
        "agree_3": _("Agree"),
        "agree_4": _("Strongly agree"),
    }


def _texts(doc: dict[str, Any], lang: str) -> dict[str, Said]:
    """Every sentence of the form in ``lang``: the configuration's strings first, then the catalogs
    (English, marked so, for a language the fleet has no catalog of)."""
    catalog_lang = lang if lang in LOCALES else "en"
    with force_locale(LOCALES[catalog_lang]):
        own = {k: Said(v, catalog_lang) for k, v in _own_texts().items()}
    configured = (doc.get("strings") or {}).get(lang) or {}
    for key in ("role_question", "role_client", "role_relative", "role_other", "nps_low", "nps_high", "thanks"):
        if isinstance(configured.get(key), str) and configured[key].strip():
            own[key] = Said(configured[key], lang)
    for i in range(5):
        if isinstance(configured.get(f"face_{i}"), str):
            own[f"face_{i}"] = Said(configured[f"face_{i}"], lang)
    return own


def _form(code: str) -> tuple[Form, dict[str, Any]]:
    unit, location = _target(code)
    doc = extension("configs").unit_doc(unit)
    lang = _language(doc)
    t = _texts(doc, lang)
    q = doc["question"]
    sc = SCALES[q["scale"]]
    low: Said | None = None
    high: Said | None = None
    if sc.is_nps:
        options = [(i, Said(str(i), lang)) for i in range(sc.size)]
        low, high = t["nps_low"], t["nps_high"]
    elif q["scale"].startswith("agree"):
        options = [(i, t[f"agree_{i}"]) for i in range(sc.size)]
    else:
        faces = FACES.get(sc.size, tuple(range(sc.size)))
        options = [(i, t[f"face_{f}"]) for i, f in enumerate(faces)]
    names = []
    for code_ in doc["languages"]:
        configured = (doc.get("strings") or {}).get(code_) or {}
        names.append(
            (
                code_,
                configured.get("language_name") or {"fi": "Suomi", "sv": "Svenska", "en": "English"}.get(code_, code_),
            )
        )
    question = Said(
        q["text"].get(lang) or q["text"][doc["default_language"]],
        lang if lang in q["text"] else doc["default_language"],
    )
    form = Form(unit, location, code, lang, names, question, q["id"], q["scale"], options, low, high, t)
    return form, doc


def _page(template: str, form: Form, status: int = 200, **extra: Any) -> Response:
    page = render_template(template, form=form, **extra)
    response = Response(page, status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<code>")
@public
def form(code: str) -> Response:
    """The form."""
    f, _doc = _form(code)
    return _page("feedback/form.html", f, chosen={}, errors={})


@bp.post("/<code>")
@public
def send(code: str) -> Response | BaseResponse:
    """Take an answer: store it and thank, or show what to correct, or say "later" when flooded."""
    if (request.content_length or 0) > MAX_BODY:
        service().refuse(INVALID)
        abort(413)
    f, doc = _form(code)
    svc = service()
    values = request.form
    if values.get(HONEYPOT_FIELD):
        svc.refuse(HONEYPOT)  # a bot: thanked, nothing stored
        return redirect(url_for("feedback.thanks", code=code, lang=f.lang), 303)
    errors: dict[str, str] = {}
    answer: int | None = None
    raw = values.get("answer", "")
    if raw:
        try:
            answer = int(raw)
        except ValueError:
            answer = -1
        if answer not in dict(f.options):
            errors["answer"] = f.t["score_missing"].text
            answer = None
    role = values.get("role") or None
    if role is not None and role not in ROLES:
        role = None
    text = (values.get("text") or "").replace("\r\n", "\n").strip()
    limit = current_app.config["HYMY"].feedback_max_text
    if len(text) > limit:
        errors["text"] = f.t["too_long"].text
    if answer is None and not text and "answer" not in errors:
        errors["answer"] = f.t["score_missing"].text
    if errors:
        svc.refuse(INVALID)
        chosen = {"answer": raw, "role": role or "", "text": text}
        return _page("feedback/form.html", f, 400, chosen=chosen, errors=errors)
    refused = svc.admit(f.unit.code, request.remote_addr or "")
    if refused is not None:
        return _page("feedback/busy.html", f, 429, by_address=refused == RATE_ADDRESS)
    svc.submit(
        Answer(
            unit=f.unit.code,
            location=f.location.code if f.location else None,
            lang=f.lang,
            question=f.question_id if answer is not None else None,
            scale=f.scale if answer is not None else None,
            answer=answer,
            role=role,
            text=text or None,
        )
    )
    return redirect(url_for("feedback.thanks", code=code, lang=f.lang), 303)


@bp.get("/<code>/thanks")
@public
def thanks(code: str) -> Response:
    """The thank-you page (after a redirect, so a reload never sends the answer twice)."""
    f, _doc = _form(code)
    return _page("feedback/thanks.html", f)

"""Enrolment in the fleet web (SPEC §13): IT's secrets and approvals, the terminals' JSON endpoints,
and the claim page a terminal's "not yet placed" QR code opens.

- ``/enrolment/``: secrets (made here, the secret shown once with the boot partition's file),
  revoked here; requests waiting for approval. IT only.
- ``/enrolment/request/<id>``: what a pending terminal's QR code opens: approve (and place) or refuse.
- ``/enrolment/replace/<device>``, ``/enrolment/revoke/<device>``: from a terminal's page.
- ``/claim/<device>``: a unit manager (or IT) places an enrolled, unplaced terminal in one of their
  units, on a phone.
- ``POST /enrol/v1`` and ``/enrol/v1/status``: the terminals' JSON, no session and no CSRF token
  (a terminal has neither), each address limited to ``enrol_attempts`` attempts in 15 minutes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from protocol import enrolment as wire
from protocol.topics import DEVICE_ID_RE

from ..accounts import ADMIN, MANAGER
from ..brokerauth import BrokerAccountsError
from ..db.enrolment import ENROLLED, PENDING
from ..enrolment import Enrolment, EnrolmentChangeError, enrol_file_text
from ..org import OrgError
from ..sheets import fleet_address
from . import extension, scope
from .access import allow, me, public
from .forms import (
    ApproveForm,
    EnrolmentSecretForm,
    PlaceForm,
    RefuseForm,
    ReplaceTerminalForm,
    RevokeLoginForm,
    RevokeSecretForm,
    choices,
)
from .i18n import language
from .terminals import unit_choices
from .throttle import WINDOW_S

bp = Blueprint("enrolment", __name__)
LIMIT_KEY = "hymy_enrol_limit"


class AttemptLimit:
    """Attempts per address in a sliding window, in this web process's memory only (nothing is stored)."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, addr: str) -> float:
        """Seconds until ``addr`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            times = self._times.get(addr)
            if not times:
                return 0.0
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) < self.limit:
                return 0.0
            return self.window_s - (now - times[-self.limit])

    def count(self, addr: str) -> None:
        """Count one attempt from ``addr``."""
        now = self._clock()
        with self._lock:
            self._times.setdefault(addr, deque()).append(now)
            if len(self._times) > 100_000:  # a flood of addresses: forget the quiet ones rather than grow
                for key in [k for k, d in self._times.items() if now - d[-1] > self.window_s]:
                    del self._times[key]


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions.setdefault(LIMIT_KEY, AttemptLimit(app.config["HYMY"].enrol_attempts))
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # terminals carry no session and no CSRF token
        csrf.exempt(enrol)
        csrf.exempt(enrol_status)


def service() -> Enrolment:
    """The app's enrolment service (``app.extensions["hymy_enrolment"]``)."""
    found: Enrolment = extension("enrolment")
    return found


# -- the terminals' JSON endpoints -------------------------------------------------------------------


def _json(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status, mimetype="application/json", headers=headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(exc: wire.EnrolmentError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    return _json(wire.encode_error(exc), exc.http_status, headers)


def _body() -> bytes:
    if request.content_length is not None and request.content_length > wire.MAX_BODY_BYTES:
        raise wire.EnrolmentError("invalid", f"body larger than {wire.MAX_BODY_BYTES} bytes")
    return request.stream.read(wire.MAX_BODY_BYTES + 1)


def _exchange(decode: Callable[[bytes], Any], answer: Callable[[Any], wire.EnrolAnswer]) -> Response:
    """Limit, decode, answer. Only refusals count toward the address's limit (a pending terminal polls
    its status every ``poll_s``, a batch behind one NAT enrols at once: neither may lock itself out)."""
    svc = service()
    limit: AttemptLimit = current_app.extensions[LIMIT_KEY]
    addr = request.remote_addr or ""
    wait = limit.wait_s(addr)
    if wait > 0:
        exc = wire.EnrolmentError("rate_limited", "too many attempts from this address", max(1, math.ceil(wait)))
        svc.refused(exc, None)
        return _refusal(exc)
    try:
        try:
            req = decode(_body())
        except wire.EnrolmentError as exc:
            svc.refused(exc, None)  # the service counts the refusals of what it is given
            raise
        return _json(wire.encode_answer(answer(req)), 200)
    except wire.EnrolmentError as exc:
        if exc.error != "unavailable":
            limit.count(addr)
        return _refusal(exc)


@bp.post("/enrol/v1")
@public
def enrol() -> Response:
    """A terminal trades its enrolment secret for an identity (SPEC §13.2).

    Only refusals count toward the address's limit: a batch of terminals switched on together
    behind one hospital NAT must all get in, and guessing a secret is nothing but refusals.
    """
    return _exchange(wire.decode_enrol, lambda req: service().enrol(req))


@bp.post("/enrol/v1/status")
@public
def enrol_status() -> Response:
    """A pending terminal asks whether IT has decided (SPEC §13.2)."""
    return _exchange(wire.decode_status, lambda req: service().status(req))


# -- IT: secrets and requests ----------------------------------------------------------------------


def _created(secret: Any, plain: str) -> str:
    settings = current_app.config["HYMY"]
    url = fleet_address(settings.public_url, request.url_root)
    return render_template(
        "enrolment/created.html", secret=secret, plain=plain, file_text=enrol_file_text(url, plain, secret.name)
    )


@bp.route("/enrolment/", methods=["GET", "POST"])
@allow(ADMIN)
def index() -> str | tuple[str, int]:
    """Secrets and waiting requests, and the form to make a secret (shown once, on the answer)."""
    svc = service()
    form = EnrolmentSecretForm()
    if form.validate_on_submit():
        try:
            made, plain = svc.create_secret(
                me().username,
                form.name.data,
                valid_days=form.valid_days.data,
                max_uses=form.max_uses.data,
                require_approval=bool(form.require_approval.data),
            )
        except EnrolmentChangeError as exc:
            form.form_errors.append(_("The secret could not be created: %(reason)s", reason=str(exc)))
        else:
            return _created(made, plain)
    secrets = svc.secrets()
    return render_template(
        "enrolment/index.html",
        form=form,
        secrets=secrets,
        names={s.id: s.name for s in secrets},
        pending=svc.pending(),
        recent=[r for r in svc.records.requests(limit=50) if r.status != PENDING],
        revoke=RevokeSecretForm(),
        refuse=RefuseForm(),
        approve=ApproveForm(),
        refusals=dict(svc.refusals),
        now_ms=int(time.time() * 1000),
    ), (400 if form.errors else 200)


@bp.post("/enrolment/secrets/<int:secret_id>/revoke")
@allow(ADMIN)
def revoke_secret(secret_id: int) -> BaseResponse:
    """Withdraw a secret: no more terminals enrol with it (those enrolled stay)."""
    svc = service()
    found = svc.records.secret(secret_id)
    if found is None:
        abort(404)
    if not RevokeSecretForm().validate_on_submit():
        abort(400)
    svc.revoke_secret(me().username, secret_id)
    flash(_("The enrolment secret “%(name)s” is revoked.", name=found.name), "info")
    return redirect(url_for("enrolment.index"))


def _request_or_404(request_id: str) -> Any:
    if not wire.REQUEST_RE.match(request_id):
        abort(404)
    found = service().request(request_id)
    if found is None:
        abort(404)
    return found


@bp.route("/enrolment/request/<request_id>", methods=["GET", "POST"])
@allow(ADMIN)
def request_page(request_id: str) -> str | BaseResponse | tuple[str, int]:
    """A terminal's request (what its pending screen's QR code opens): approve and place it, or refuse."""
    found = _request_or_404(request_id)
    t = scope.tree()
    form = ApproveForm()
    units, locations = unit_choices(t)
    form.unit.choices = choices([(0, _("Place it later"))] + units)
    form.location.choices = choices(locations)
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("Choose a unit (and a location of that unit), or place it later."), "error")
            return redirect(url_for("enrolment.request_page", request_id=request_id))
        if found.status not in (PENDING, ENROLLED):
            flash(_("This terminal's login was revoked or refused: it cannot be placed."), "error")
            return redirect(url_for("enrolment.request_page", request_id=request_id))
        svc = service()
        try:
            if found.status == PENDING:
                svc.approve(request_id, me().username)
        except BrokerAccountsError:
            flash(_("The broker's account store could not be reached: nothing was changed. Try again."), "error")
            return redirect(url_for("enrolment.request_page", request_id=request_id))
        except EnrolmentChangeError as exc:
            flash(_("The request could not be approved: %(reason)s", reason=str(exc)), "error")
            return redirect(url_for("enrolment.request_page", request_id=request_id))
        if found.status == PENDING:
            flash(_("Approved: terminal %(device)s may connect now.", device=found.device), "info")
        if form.unit.data:
            _place(t, found.device, form.unit.data, form.location.data or None)
        return redirect(url_for("enrolment.request_page", request_id=request_id))
    secret = service().records.secret(found.secret_id)
    return render_template(
        "enrolment/request.html",
        r=found,
        secret=secret,
        form=form,
        refuse=RefuseForm(),
        placed=extension("store").terminal(found.device),
        tree=t,
    )


@bp.post("/enrolment/request/<request_id>/refuse")
@allow(ADMIN)
def refuse(request_id: str) -> BaseResponse:
    """Refuse a waiting terminal: its login is deleted and it is told ``refused``."""
    found = _request_or_404(request_id)
    if not RefuseForm().validate_on_submit():
        abort(400)
    try:
        service().refuse(request_id, me().username)
    except BrokerAccountsError:
        flash(_("The broker's account store could not be reached: nothing was changed. Try again."), "error")
    except EnrolmentChangeError as exc:
        flash(_("The request could not be refused: %(reason)s", reason=str(exc)), "error")
    else:
        flash(_("Refused: terminal %(device)s cannot connect.", device=found.device), "info")
    return redirect(url_for("enrolment.index"))


def _known_or_404(device: str) -> None:
    if not DEVICE_ID_RE.match(device):
        abort(404)
    if extension("store").terminal(device) is None and service().latest(device) is None:
        abort(404)


def _back_to(device: str) -> BaseResponse:
    if extension("store").terminal(device) is not None:
        return redirect(url_for("terminals.terminal", device=device))
    return redirect(url_for("enrolment.index"))


@bp.post("/enrolment/replace/<device>")
@allow(ADMIN)
def replace(device: str) -> str | BaseResponse:
    """A one-use secret, valid for a day, that enrols a new card or new hardware as this terminal."""
    _known_or_404(device)
    if not ReplaceTerminalForm().validate_on_submit():
        abort(400)
    try:
        made, plain = service().replacement_secret(me().username, device)
    except EnrolmentChangeError as exc:
        flash(_("No replacement secret was made: %(reason)s", reason=str(exc)), "error")
        return _back_to(device)
    return _created(made, plain)


@bp.post("/enrolment/revoke/<device>")
@allow(ADMIN)
def revoke_login(device: str) -> BaseResponse:
    """Lock a terminal out (stolen, lost): its broker login is deleted and it is disconnected at once."""
    _known_or_404(device)
    form = RevokeLoginForm(prefix="revoke")
    if not form.validate_on_submit():
        flash(_("Say why the terminal's login is revoked."), "error")
        return _back_to(device)
    try:
        service().revoke(device, me().username, form.reason.data.strip())
    except BrokerAccountsError:
        flash(_("The broker's account store could not be reached: nothing was changed. Try again."), "error")
    else:
        flash(_("Its broker login is revoked: the terminal is disconnected and cannot connect again."), "info")
    return _back_to(device)


# -- claiming a terminal on a phone ----------------------------------------------------------------


def _place(t: Any, device: str, unit_id: int, location_id: int | None) -> bool:
    unit = scope.node_or_404(t, unit_id)
    try:
        extension("org").place(me().username, device, unit.id, location_id)
    except OrgError as exc:
        flash(_("The terminal could not be placed: %(reason)s", reason=str(exc)), "error")
        return False
    flash(
        _("Placed in %(unit)s. The terminal gets its configuration within seconds.", unit=unit.name(language())),
        "info",
    )
    return True


@bp.route("/claim/<device>", methods=["GET", "POST"])
@allow(ADMIN, MANAGER)
def claim(device: str) -> str | BaseResponse | tuple[str, int]:
    """Place a terminal from its QR code: an unplaced one in a unit of yours, or move one of yours."""
    if not DEVICE_ID_RE.match(device):
        abort(404)
    t = scope.tree()
    status = extension("store").terminal(device)
    latest = service().latest(device)
    if status is None and latest is None:
        abort(404)
    if status is not None and status.unit is not None and not scope.terminal_visible(t, status):
        abort(404)  # placed outside the person's part: its existence does not leak
    retired = extension("org").retired().get(device)
    why_not = None
    if retired is not None:
        why_not = _("This terminal is retired and cannot be placed.")
    elif latest is not None and latest.status == PENDING:
        why_not = _("This terminal is waiting for IT to approve its enrolment.")
    elif latest is not None and latest.status != ENROLLED:
        why_not = _("This terminal's login was revoked or refused: it cannot be placed.")
    form = PlaceForm()
    form.unit.choices, form.location.choices = map(choices, unit_choices(t))
    if request.method == "POST":
        if why_not is not None:
            flash(why_not, "error")
            return redirect(url_for("enrolment.claim", device=device))
        if form.validate_on_submit():
            _place(t, device, form.unit.data, form.location.data or None)
            return redirect(url_for("enrolment.claim", device=device))
        flash(_("Choose a unit (and a location of that unit)."), "error")
    unit = t.by_code.get(status.unit) if status is not None and status.unit else None
    if unit is not None:
        form.unit.data = unit.id
    return render_template(
        "enrolment/claim.html",
        device=device,
        unit=unit,
        why_not=why_not,
        pending=latest if latest is not None and latest.status == PENDING else None,
        form=form,
    ), (400 if form.errors else 200)

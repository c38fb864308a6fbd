"""The fleet web's forms (Flask-WTF: each carries its CSRF token); every field says what a bad value is."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DecimalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from protocol.configdoc import WEEKDAYS, known_time_zone

from ..accounts import LANGUAGES, MIN_PASSWORD, ROLES
from ..org import SERVICE_TYPES, OrgError, check_code, check_oid

ROLE_LABELS = {"admin": _l("IT administrator"), "manager": _l("Unit manager"), "viewer": _l("Viewer")}
KIND_LABELS = {
    "region": _l("Region"),
    "area": _l("Service area"),
    "unit": _l("Unit"),
    "location": _l("Location"),
}
SERVICE_LABELS = {
    "health_centre": _l("Health centre reception"),
    "child_health": _l("Child health clinic"),
    "maternity": _l("Maternity clinic"),
    "school_health": _l("School and student health care"),
    "oral_health": _l("Oral health care"),
    "emergency": _l("Emergency department"),
    "outpatient": _l("Hospital outpatient clinic"),
    "ward": _l("Hospital ward"),
    "mental_health": _l("Mental health services"),
    "substance_abuse": _l("Substance abuse services"),
    "rehabilitation": _l("Rehabilitation"),
    "laboratory": _l("Laboratory"),
    "home_care": _l("Home care"),
    "housing_services": _l("Housing services"),
    "social_services": _l("Social services"),
    "family_services": _l("Family services"),
    "other": _l("Other"),
}
WEEKDAY_LABELS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}
LANGUAGE_CHOICES = [("fi", "Suomi"), ("sv", "Svenska"), ("en", "English")]


def choices(pairs: Any) -> list[SelectChoice]:
    """Select options from (value, label) pairs (WTForms 3.3 wants SelectChoice objects)."""
    return [SelectChoice(value, label) for value, label in pairs]


def _oid(form: Any, field: Any) -> None:
    if field.data:
        try:
            check_oid(field.data)
        except OrgError:
            raise ValidationError(
                _l("An organisation OID looks like 1.2.246.10.2048198.10.1 and must contain a valid business ID.")
            ) from None


def _code(form: Any, field: Any) -> None:
    try:
        check_code(field.data or "")
    except OrgError:
        raise ValidationError(
            _l("Use 1–64 letters, digits or . _ : - starting with a letter or digit, e.g. kaukajarvi-hc.")
        ) from None


def _zone(form: Any, field: Any) -> None:
    if not known_time_zone((field.data or "").strip()):
        raise ValidationError(_l("Give a time zone such as Europe/Helsinki."))


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()
    submit = SubmitField(_l("Sign in"))


class LanguageForm(FlaskForm):
    lang = SelectField(_l("Language"), choices=choices(LANGUAGE_CHOICES), validators=[InputRequired()])
    next = HiddenField()
    submit = SubmitField(_l("Change language"))


class NodeForm(FlaskForm):
    """A region, service area, unit or location; fields that do not apply to the kind are hidden."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(), Length(max=64), _code],
        description=_l("A short stable id; a unit's code is what its terminals report."),
    )
    name_fi = StringField(_l("Name in Finnish"), validators=[DataRequired(), Length(max=200)])
    name_sv = StringField(_l("Name in Swedish"), validators=[Optional(), Length(max=200)])
    name_en = StringField(_l("Name in English"), validators=[Optional(), Length(max=200)])
    oid = StringField(
        _l("Organisation OID"),
        validators=[Optional(), Length(max=64), _oid],
        description=_l("From the national SOTE organisation register, e.g. 1.2.246.10.2048198.10.1"),
    )
    service_type = SelectField(
        _l("Service type"),
        validators=[Optional()],
        choices=choices([("", "–")] + [(s, SERVICE_LABELS[s]) for s in SERVICE_TYPES]),
    )
    tz = StringField(_l("Time zone"), default="Europe/Helsinki", validators=[Optional(), _zone])
    misuse_interval_s = DecimalField(
        _l("Misuse interval (seconds)"),
        places=1,
        validators=[Optional(), NumberRange(0, 3600)],
        description=_l("Presses faster than this after the previous one are flagged as misuse."),
    )
    target = IntegerField(
        _l("Target score"),
        validators=[Optional(), NumberRange(-100, 100)],
        description=_l("NPS from -100 to 100, shown beside the unit's results."),
    )
    submit = SubmitField(_l("Save"))


for _day in WEEKDAYS:
    setattr(NodeForm, f"hours_{_day}", StringField(WEEKDAY_LABELS[_day], validators=[Optional(), Length(max=80)]))


class ArchiveForm(FlaskForm):
    submit = SubmitField(_l("Archive"))


class RestoreForm(FlaskForm):
    submit = SubmitField(_l("Restore"))


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired()],
        description=_l(
            "UTF-8, comma or semicolon separated; columns kind, code, parent, name_fi, name_sv, "
            "name_en, oid, service_type, tz, misuse_interval_s, target."
        ),
    )
    submit = SubmitField(_l("Check the file (nothing is changed yet)"))


class ApplyImportForm(FlaskForm):
    text = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Apply these changes"))


class PlaceForm(FlaskForm):
    unit = SelectField(_l("Unit"), coerce=int, validators=[InputRequired()])
    location = SelectField(_l("Location"), coerce=int, validators=[Optional()])
    submit = SubmitField(_l("Place the terminal"))


class RetireForm(FlaskForm):
    reason = TextAreaField(_l("Why is it retired?"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Retire the terminal"))


class AccountForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(min=2, max=64)])
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD, max=1024)],
        description=_l("At least 12 characters."),
    )
    role = SelectField(_l("Role"), choices=choices((r, ROLE_LABELS[r]) for r in ROLES), validators=[InputRequired()])
    scope = SelectField(_l("Part of the organisation"), coerce=int, validators=[InputRequired()])
    lang = SelectField(_l("Language"), choices=choices((c, n) for c, n in LANGUAGE_CHOICES if c in LANGUAGES))
    submit = SubmitField(_l("Create the account"))


class AccountEditForm(FlaskForm):
    role = SelectField(_l("Role"), choices=choices((r, ROLE_LABELS[r]) for r in ROLES), validators=[InputRequired()])
    scope = SelectField(_l("Part of the organisation"), coerce=int, validators=[InputRequired()])
    disabled = BooleanField(_l("Disabled (cannot sign in)"))
    password = PasswordField(
        _l("New password"),
        validators=[Optional(), Length(min=MIN_PASSWORD, max=1024)],
        description=_l("Leave empty to keep the password."),
    )
    submit = SubmitField(_l("Save"))


TEMPLATE_LABELS = {
    "nps": _l("National NPS question (THL)"),
    "nps-followup": _l("National NPS question with a follow-up"),
    "faces4": _l("Four faces"),
    "faces5": _l("Five faces"),
    "agree5": _l("Agree–disagree statement"),
}


class NewConfigForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=120)],
        description=_l("For example: Health centres, NPS with follow-up."),
    )
    template = SelectField(_l("Start from"), choices=choices(TEMPLATE_LABELS.items()), validators=[InputRequired()])
    submit = SubmitField(_l("Create"))


class ConfigTextsForm(FlaskForm):
    """The common settings of a configuration, in fields; everything else in the document form."""

    lang_fi = BooleanField("Suomi")
    lang_sv = BooleanField("Svenska")
    lang_en = BooleanField("English")
    default_language = SelectField(_l("Language shown first"), choices=choices(LANGUAGE_CHOICES))
    text_fi = TextAreaField(_l("Question in Finnish"), validators=[Optional(), Length(max=300)])
    text_sv = TextAreaField(_l("Question in Swedish"), validators=[Optional(), Length(max=300)])
    text_en = TextAreaField(_l("Question in English"), validators=[Optional(), Length(max=300)])
    thanks_fi = StringField(
        _l("Thank-you text in Finnish"),
        validators=[Optional(), Length(max=80)],
        description=_l("Empty: the terminal's own text (Kiitos! / Tack! / Thank you!)."),
    )
    thanks_sv = StringField(_l("Thank-you text in Swedish"), validators=[Optional(), Length(max=80)])
    thanks_en = StringField(_l("Thank-you text in English"), validators=[Optional(), Length(max=80)])
    role_question = BooleanField(_l("Ask who is answering (client, relative, other)"))
    thanks_s = DecimalField(
        _l("Thank-you screen (seconds)"), places=0, validators=[InputRequired(), NumberRange(1, 120)]
    )
    misuse_interval_s = DecimalField(
        _l("Misuse interval (seconds)"),
        places=1,
        validators=[InputRequired(), NumberRange(0, 3600)],
        description=_l("A unit's own misuse interval, where set, is used instead."),
    )
    feedback_url = StringField(
        _l("Feedback link shown as a QR code on the thank-you screen"),
        validators=[Optional(), Length(max=300)],
        description=_l(
            "Write {unit} where each unit's code goes: https://hymy.example.fi/f/{unit} opens every unit's "
            "own feedback form of this fleet."
        ),
    )
    submit = SubmitField(_l("Save as a new version"))


class ConfigDocForm(FlaskForm):
    doc = TextAreaField(
        _l("The document (JSON)"),
        validators=[DataRequired(), Length(max=60_000)],
        description=_l("Other languages (such as the Sámi languages) and follow-up questions are added here."),
    )
    submit = SubmitField(_l("Save as a new version"))


class PublishForm(FlaskForm):
    submit = SubmitField(_l("Publish"))


class AssignForm(FlaskForm):
    target = HiddenField(validators=[DataRequired()])
    set_id = SelectField(_l("Configuration"), coerce=int, validators=[InputRequired()])
    submit = SubmitField(_l("Assign"))


class OwnPasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD, max=1024)],
        description=_l("At least 12 characters."),
    )
    again = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField(_l("Change the password"))


class ApiTokenForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Who uses the token, for example: Reporting system of the welfare region."),
    )
    scope = SelectField(_l("Part of the organisation"), coerce=int, validators=[InputRequired()])
    submit = SubmitField(_l("Create the token"))


class RevokeTokenForm(FlaskForm):
    submit = SubmitField(_l("Revoke"))


class EnrolmentSecretForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Which terminals it is for, for example: Batch 7 for the Hervanta health centre."),
    )
    valid_days = IntegerField(
        _l("Valid for (days)"), default=14, validators=[InputRequired(), NumberRange(min=1, max=365)]
    )
    max_uses = IntegerField(
        _l("How many terminals may enrol with it"),
        validators=[Optional(), NumberRange(min=1, max=100_000)],
        description=_l("Empty: any number of terminals until it expires."),
    )
    require_approval = BooleanField(
        _l("IT approves each terminal before it may connect"),
        description=_l("Each terminal then waits on the enrolment page until someone approves or refuses it."),
    )
    submit = SubmitField(_l("Create the secret"))


class RevokeSecretForm(FlaskForm):
    submit = SubmitField(_l("Revoke"))


class ApproveForm(FlaskForm):
    unit = SelectField(_l("Unit"), coerce=int, validators=[Optional()])
    location = SelectField(_l("Location"), coerce=int, validators=[Optional()])
    submit = SubmitField(_l("Approve"))


class RefuseForm(FlaskForm):
    submit = SubmitField(_l("Refuse"))


class ReplaceTerminalForm(FlaskForm):
    submit = SubmitField(_l("Replace this terminal"))


class RevokeLoginForm(FlaskForm):
    reason = TextAreaField(_l("Why is its login revoked?"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Revoke its broker login"))

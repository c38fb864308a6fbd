"""Redaction: identity codes, phone numbers, e-mail and street addresses out; dates, times and amounts stay."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.redact import KINDS, MARKERS, Redacted, hetu_ok, redact

CONTROL = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(born: date, individual: int, sign: str | None = None) -> str:
    """A valid identity code for someone born on ``born``, computed here independently of the module."""
    if sign is None:
        sign = {18: "+", 19: "-", 20: "A"}[born.year // 100]
    ddmmyy = born.strftime("%d%m") + f"{born.year % 100:02d}"
    nnn = f"{individual:03d}"
    return f"{ddmmyy}{sign}{nnn}{CONTROL[int(ddmmyy + nnn) % 31]}"


# --- Realistic texts: as patients and relatives type them on a phone --------------------------------

FINNISH = [
    (
        "Kiitos ihanalle hoitajalle! Kaikki sujui hyvin ja nopeasti 😊",
        "Kiitos ihanalle hoitajalle! Kaikki sujui hyvin ja nopeasti 😊",
        {},
    ),
    (
        "Odotin 45 min vaikka aika oli klo 14.30. ei hyvä",
        "Odotin 45 min vaikka aika oli klo 14.30. ei hyvä",
        {},
    ),
    (
        "Soittakaa minulle takaisin 040 123 4567 niin kerron lisää",
        "Soittakaa minulle takaisin [PHONE] niin kerron lisää",
        {"phone": 1},
    ),
    (
        "Mun hetu on 131052-308T ja silti kysyttiin kolme kertaa nimeä",
        "Mun hetu on [ID] ja silti kysyttiin kolme kertaa nimeä",
        {"id": 1},
    ),
    (
        "lähetin viestin osoitteeseen matti.virtanen@gmail.com mutta kukaan ei vastannut 2-3 viikkoon",
        "lähetin viestin osoitteeseen [EMAIL] mutta kukaan ei vastannut 2-3 viikkoon",
        {"email": 1},
    ),
    (
        "Äitini asuu Koivukuja 3 as 4, 02100 Espoo eikä kotihoito tullut sovittuna päivänä 12.3.2024",
        "Äitini asuu [ADDRESS] eikä kotihoito tullut sovittuna päivänä 12.3.2024",
        {"address": 1},
    ),
    (
        "Isän tiedot: 230347-1186, puh 0401234567, Mannerheimintie 12 B 34. Lääkäri ei koskaan soittanut.",
        "Isän tiedot: [ID], puh [PHONE], [ADDRESS]. Lääkäri ei koskaan soittanut.",
        {"id": 1, "phone": 1, "address": 1},
    ),
    (
        "Terveyskeskus Hämeenkadulla on vaikea löytää, kyltit puuttuu",
        "Terveyskeskus Hämeenkadulla on vaikea löytää, kyltit puuttuu",
        {},
    ),
    (
        "Ajanvaraus (09) 310 1234 ei vastaa koskaan klo 8-16 välillä, jonotin 40 min",
        "Ajanvaraus [PHONE] ei vastaa koskaan klo 8-16 välillä, jonotin 40 min",
        {"phone": 1},
    ),
    (
        "Annan 0-10 asteikolla 10! huone 203 oli siisti ja henkilökunta ystävällistä",
        "Annan 0-10 asteikolla 10! huone 203 oli siisti ja henkilökunta ystävällistä",
        {},
    ),
    (
        "Tytär soitti 116 117 ja sieltä neuvottiin tulemaan tänne, hyvä niin. Onneks ei tarvinnu soittaa 112",
        "Tytär soitti 116 117 ja sieltä neuvottiin tulemaan tänne, hyvä niin. Onneks ei tarvinnu soittaa 112",
        {},
    ),
    (
        "hetu 150385-246Z kirjoitin lomakkeeseen väärin mut ei se mitään, lääkäri oli tosi hyvä",
        "hetu 150385-246Z kirjoitin lomakkeeseen väärin mut ei se mitään, lääkäri oli tosi hyvä",
        {},
    ),
    (
        "Asiakasmaksu 45 € ja lasku meni vanhaan osoitteeseen Itäinen Pitkäkatu 5 A 3, 20700 Turku vaikka muutin",
        "Asiakasmaksu 45 € ja lasku meni vanhaan osoitteeseen [ADDRESS] vaikka muutin",
        {"address": 1},
    ),
    (
        "@hoitajat kiitos! Olitte ihania. Lisää palautetta liisa.k@outlook.fi tai +358 50 765 4321",
        "@hoitajat kiitos! Olitte ihania. Lisää palautetta [EMAIL] tai [PHONE]",
        {"email": 1, "phone": 1},
    ),
    (
        "Kello 8-9 ei päässyt A-rappuun kun ovi oli kiinni. Asun Vanha Porvoontie 20, soita 09 3101 2345",
        "Kello 8-9 ei päässyt A-rappuun kun ovi oli kiinni. Asun [ADDRESS], soita [PHONE]",
        {"address": 1, "phone": 1},
    ),
]

SWEDISH = [
    (
        "Tack för ett bra bemötande, personalen var jättesnäll!",
        "Tack för ett bra bemötande, personalen var jättesnäll!",
        {},
    ),
    (
        "Väntade 2 timmar på akuten trots att jag hade tid kl 10.15",
        "Väntade 2 timmar på akuten trots att jag hade tid kl 10.15",
        {},
    ),
    (
        "ring mig på 070-123 45 67 så berättar jag mer",
        "ring mig på [PHONE] så berättar jag mer",
        {"phone": 1},
    ),
    (
        "Min personbeteckning 070663-350W skrevs fel i journalen!!",
        "Min personbeteckning [ID] skrevs fel i journalen!!",
        {"id": 1},
    ),
    (
        "Min mamma bor på Storgatan 4 A 7, 65100 Vasa och ingen kom hem till henne",
        "Min mamma bor på [ADDRESS] och ingen kom hem till henne",
        {"address": 1},
    ),
    (
        "Skicka svar till anna.lindqvist@hotmail.se, tack",
        "Skicka svar till [EMAIL], tack",
        {"email": 1},
    ),
    (
        "Rum 12 var smutsigt och toaletten trasig. Betyg 3 av 10.",
        "Rum 12 var smutsigt och toaletten trasig. Betyg 3 av 10.",
        {},
    ),
    (
        "Ring hälsorådgivningen 116 117 eller 112 vid nödsituation, det stod ingenstans",
        "Ring hälsorådgivningen 116 117 eller 112 vid nödsituation, det stod ingenstans",
        {},
    ),
    (
        "jag ringde +46 70 123 45 67 flera gånger men ingen svarade",
        "jag ringde [PHONE] flera gånger men ingen svarade",
        {"phone": 1},
    ),
    (
        "Receptionen på Kungsgatan var svår att hitta, inga skyltar alls",
        "Receptionen på Kungsgatan var svår att hitta, inga skyltar alls",
        {},
    ),
    (
        "Pappa 120458-4426, Gamla vägen 12, tel 08-123 456 78. Han fick fel medicin!",
        "Pappa [ID], [ADDRESS], tel [PHONE]. Han fick fel medicin!",
        {"id": 1, "address": 1, "phone": 1},
    ),
    (
        "Öppettiderna 8-16 passar inte när man jobbar. 1 000 euro i avgifter per år!",
        "Öppettiderna 8-16 passar inte när man jobbar. 1 000 euro i avgifter per år!",
        {},
    ),
    (
        "Bor på Östra Hamngatan 10 lgh 1203 och fick aldrig kallelsen, mejla erik@example.com",
        "Bor på [ADDRESS] och fick aldrig kallelsen, mejla [EMAIL]",
        {"address": 1, "email": 1},
    ),
    (
        "Vårdplanen var bra. Tack till @sköterskorna på avdelning 5, ni är 100 % bäst",
        "Vårdplanen var bra. Tack till @sköterskorna på avdelning 5, ni är 100 % bäst",
        {},
    ),
    (
        "Min sons nummer är 0401234567 och mitt är +358 40 987 6543, ring någon av oss",
        "Min sons nummer är [PHONE] och mitt är [PHONE], ring någon av oss",
        {"phone": 2},
    ),
]

ENGLISH = [
    (
        "Great service, the nurse was very kind and explained everything.",
        "Great service, the nurse was very kind and explained everything.",
        {},
    ),
    (
        "waited 2-3 weeks for an appointment and then another 45 min in the lobby",
        "waited 2-3 weeks for an appointment and then another 45 min in the lobby",
        {},
    ),
    (
        "Please call me back on +44 7700 900123, nobody answers at the clinic",
        "Please call me back on [PHONE], nobody answers at the clinic",
        {"phone": 1},
    ),
    (
        "My ID is 311210A907H if you need to find my records",
        "My ID is [ID] if you need to find my records",
        {"id": 1},
    ),
    (
        "I live at 12 Baker Street, London and the letter never arrived",
        "I live at [ADDRESS], London and the letter never arrived",
        {"address": 1},
    ),
    (
        "email me at john.smith@example.co.uk about the invoice nro 12345",
        "email me at [EMAIL] about the invoice nro 12345",
        {"email": 1},
    ),
    (
        "The clinic on Hämeenkatu is hard to find, no signs at all",
        "The clinic on Hämeenkatu is hard to find, no signs at all",
        {},
    ),
    (
        "Rated 9/10, room 203 was clean. Version 2.0 of the app is much better",
        "Rated 9/10, room 203 was clean. Version 2.0 of the app is much better",
        {},
    ),
    (
        "Called 040 123 4567 ten times between 8-16 and nobody picked up",
        "Called [PHONE] ten times between 8-16 and nobody picked up",
        {"phone": 1},
    ),
    (
        "My mother (290295-731D) lives at Mannerheimintie 12 B 34, 00100 Helsinki. "
        "Contact her at 09 310 1234 or her son mark.h@gmail.com",
        "My mother ([ID]) lives at [ADDRESS]. Contact her at [PHONE] or her son [EMAIL]",
        {"id": 1, "address": 1, "phone": 1, "email": 1},
    ),
    (
        "Only 50% of my questions were answered. The doctor was in a hurry.",
        "Only 50% of my questions were answered. The doctor was in a hurry.",
        {},
    ),
    (
        "Emergency 112 and the helpline 116 117 were both busy on 3.12. around 14.30",
        "Emergency 112 and the helpline 116 117 were both busy on 3.12. around 14.30",
        {},
    ),
    (
        "parking near 5 Station Road costs 4 € an hour, way too much for 2 hours",
        "parking near [ADDRESS] costs 4 € an hour, way too much for 2 hours",
        {"address": 1},
    ),
    (
        "Wrong code 131052-308U on the form? My real one is 131052-308T",
        "Wrong code 131052-308U on the form? My real one is [ID]",
        {"id": 1},
    ),
    (
        "text me +358401234567 or write to @nurses thanks, lovely team",
        "text me [PHONE] or write to @nurses thanks, lovely team",
        {"phone": 1},
    ),
]

REALISTIC = [
    pytest.param(text, expected, counts, id=f"{lang}-{i:02d}")
    for lang, table in (("fi", FINNISH), ("sv", SWEDISH), ("en", ENGLISH))
    for i, (text, expected, counts) in enumerate(table, 1)
]


def test_each_language_has_fifteen_realistic_texts_some_clean_and_some_with_several_kinds() -> None:
    for table in (FINNISH, SWEDISH, ENGLISH):
        assert len(table) == 15
        assert any(not counts for _, _, counts in table)
        assert any(sum(counts.values()) > 1 for _, _, counts in table)


@pytest.mark.parametrize(("text", "expected", "counts"), REALISTIC)
def test_realistic_feedback_is_redacted_exactly(text: str, expected: str, counts: dict[str, int]) -> None:
    red = redact(text)
    assert red.text == expected
    assert red.counts == counts
    assert red.total == sum(counts.values())


# --- What each kind recognises ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "040 123 4567",
        "040-1234567",
        "0401234567",
        "050 123 45 67",
        "+358 40 123 4567",
        "+358401234567",
        "+358-40-1234567",
        "(09) 310 1234",
        "09 3101 2345",
        "09-310 1234",
        "070-123 45 67",
        "+46 70 123 45 67",
        "+46 (0)70 123 45 67",
        "+46 8 123 456 78",
        "08-123 456 78",
        "+44 20 7946 0958",
        "+1 212 555 0123",
    ],
)
def test_finnish_swedish_and_international_phone_numbers_are_removed(number: str) -> None:
    red = redact(f"soita {number} kiitos")
    assert red == Redacted("soita [PHONE] kiitos", {"phone": 1})


@pytest.mark.parametrize(
    "address",
    [
        "Hämeenkatu 5",
        "Hämeenkatu 5b",
        "Mannerheimintie 12 B 34",
        "Mannerheimintie 12B34",
        "Mannerheimintie 12 b 34",
        "Koivukuja 3 as 4",
        "Koivukuja 3 as. 4",
        "Kalliorinne 2-4",
        "Rantaraitti 7 C",
        "Itäinen Pitkäkatu 5",
        "Mannerheimin tie 12",
        "Mannerheimintie 12 B 34, 00100 Helsinki",
        "Hämeenkatu 5 33100 TAMPERE",
        "Storgatan 4 A 7",
        "Storgatan 4, 114 55 Stockholm",
        "Östra Hamngatan 10 lgh 1203",
        "Gamla vägen 12",
        "Strandallén 3",
        "12 Baker Street",
        "12b Baker Street",
        "221 Old Kent Road",
        "5 Station Rd",
        "3 Church Lane",
    ],
)
def test_street_addresses_with_a_house_number_are_removed(address: str) -> None:
    red = redact(f"osoite {address} ok")
    assert red == Redacted("osoite [ADDRESS] ok", {"address": 1})


def test_a_postal_code_and_town_after_an_address_go_with_it() -> None:
    assert redact("Mannerheimintie 12 B 34, 00100 Helsinki.").text == "[ADDRESS]."


def test_a_genitive_before_a_separate_street_word_goes_but_a_first_name_stays() -> None:
    assert redact("Aleksis Kiven katu 5").text == "Aleksis [ADDRESS]"


def test_a_swedish_preposition_after_the_house_number_stays() -> None:
    assert redact("Storgatan 4 i Stockholm").text == "[ADDRESS] i Stockholm"


@pytest.mark.parametrize(
    "email",
    ["matti.virtanen@gmail.com", "liisa.k+palaute@outlook.fi", "j_smith@nhs.example.co.uk", "meikäläinen@posti.fi"],
)
def test_email_addresses_are_removed_whole(email: str) -> None:
    assert redact(f"kirjoita {email}.") == Redacted("kirjoita [EMAIL].", {"email": 1})


@pytest.mark.parametrize(
    "code", ["131052-308T", "131052a308t", "010190-123M", "240799A0122", hetu(date(1850, 1, 1), 123), "010190Y123M"]
)
def test_identity_codes_with_a_right_control_character_are_removed_in_either_case(code: str) -> None:
    assert redact(f"hetu {code}, kiitos") == Redacted("hetu [ID], kiitos", {"id": 1})


# --- Near-misses: what feedback is full of and identifies no one ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "käynti 12.3.2024",
        "tulin 3.12. aamulla",
        "aika klo 14.30",
        "kello 8-9",
        "odotin 45 min",
        "2-3 viikkoa",
        "asteikolla 0-10",
        "vuonna 2024",
        "huone 203",
        "rum 12",
        "maksoin 45 €",
        "1 000 euroa",
        "1 000 000 000 euroa",
        "soitin 116 117",
        "hätänumero 112",
        "auki 8-16",
        "hetu 131052-308U",
        "hetu 010190-123B",
        "the clinic on Hämeenkatu is hard to find",
        "Sairaalan piha 2 oli täynnä",
        "@hoitajat kiitos",
        "kiitos @Anna ja @Pekka",
        "90 % tyytyväinen",
        "A-rappu",
        "versio 2.0",
        "tilaus nro 12345",
        "nro 012345",
        "2024-05-03 10:30",
        "postinumero 00100",
        "väntade 45 minuter kl 08.00-09.30",
        "+5 astetta ulkona",
    ],
)
def test_near_misses_stay_untouched(text: str) -> None:
    assert redact(text) == Redacted(text, {})


def test_a_phone_number_typed_straight_after_a_word_is_removed() -> None:
    assert redact("puh0401234567 tai tel.040-1234567") == Redacted("puh[PHONE] tai tel.[PHONE]", {"phone": 2})


def test_a_single_digit_after_a_phone_number_stays() -> None:
    assert redact("soitin 040 123 4567 2 kertaa").text == "soitin [PHONE] 2 kertaa"


def test_a_code_shaped_string_with_a_wrong_control_character_is_not_read_as_a_phone_number() -> None:
    assert redact("010190-123B").text == "010190-123B"


def test_other_scripts_digits_are_not_digits() -> None:
    text = "٠٤٠ ١٢٣ ٤٥٦٧, ０４０１２３４５６７, 0٤٠ ١٢٣ ٤٥٦٧, +٣٥٨ ٤٠ ١٢٣ ٤٥٦٧, Hämeenkatu ٥ and ١٣١٠٥٢-٣٠٨T"
    assert redact(text) == Redacted(text, {})


# --- hetu_ok ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["131052-308T", "131052-308t", "131052A308T", "010190-123M", "311210A907H"])
def test_hetu_ok_accepts_a_right_control_character(code: str) -> None:
    assert hetu_ok(code)


@pytest.mark.parametrize(
    "code",
    [
        "131052-308U",  # wrong control character
        "131052-308",  # too short
        "131052-308TT",  # too long
        "131052G308T",  # no such century sign
        "13105X-308T",  # a letter in the date
        "١٣١٠٥٢-٣٠٨T",  # other scripts' digits
    ],
)
def test_hetu_ok_refuses_anything_else(code: str) -> None:
    assert not hetu_ok(code)


# --- The result ------------------------------------------------------------------------------------


def test_counts_hold_only_kinds_that_occurred_and_total_adds_them() -> None:
    red = redact("040 123 4567 tai 050 765 4321, a@b.fi")
    assert red.counts == {"phone": 2, "email": 1}
    assert red.total == 3
    assert redact("ei mitään").counts == {}
    assert redact("ei mitään").total == 0


def test_every_kind_has_a_marker_without_digits_or_at_sign() -> None:
    assert set(MARKERS) == set(KINDS)
    for marker in MARKERS.values():
        assert not any(ch.isdigit() or ch == "@" for ch in marker)
        assert redact(marker) == Redacted(marker, {})


# --- Properties and hostile input -------------------------------------------------------------------

NO_DIGITS_NO_AT = st.text(st.characters(exclude_characters="0123456789@"))
CENTURY_SIGNS = {18: "+", 19: "-YXWVU", 20: "ABCDEF"}


@given(
    born=st.dates(date(1800, 1, 1), date(2099, 12, 31)),
    individual=st.integers(0, 999),
    sign_pick=st.integers(0, 5),
    lower=st.booleans(),
    before=NO_DIGITS_NO_AT,
    after=NO_DIGITS_NO_AT,
)
def test_any_valid_identity_code_in_any_text_is_removed(
    born: date, individual: int, sign_pick: int, lower: bool, before: str, after: str
) -> None:
    signs = CENTURY_SIGNS[born.year // 100]
    code = hetu(born, individual, signs[sign_pick % len(signs)])
    if lower:
        code = code.lower()
    red = redact(f"{before} {code} {after}")
    assert red == Redacted(f"{before} [ID] {after}", {"id": 1})


@given(NO_DIGITS_NO_AT)
def test_text_without_digits_or_at_sign_is_returned_unchanged(text: str) -> None:
    assert redact(text) == Redacted(text, {})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_long_hostile_input_of_digits_spaces_and_dashes_finishes(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice("0123456789  --") for _ in range(100_000))
    assert isinstance(redact(text).text, str)


@pytest.mark.parametrize(
    "text",
    [
        "0" * 100_000,
        "00 " * 33_333,
        "0-" * 50_000,
        "1 " * 50_000,
        "+1 " * 33_333,
        "a@" * 50_000,
        "x@" + "a." * 50_000,
        "A" + "a" * 100_000 + "katu 5",
        "1" + " " * 100_000 + "Baker Street",
    ],
)
def test_long_hostile_inputs_of_each_pattern_finish(text: str) -> None:
    assert isinstance(redact(text).text, str)

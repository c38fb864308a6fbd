"""Hand-written keyword rules for themes and tone: the baseline the built-in method is measured against.

This is not what the fleet runs. It exists so that ``hymy fleet themes --evaluate --compare`` can
say honestly whether the learned method (``builtin.py``) does better than the rules a careful
developer would write from docs/themes-labelling.md: if scikit-learn did not beat these, it would
not be worth its weight.

A text's words are lower-cased, split as ``builtin.py`` splits them and reduced to Snowball stems in
the text's language. A theme is given when any of its keywords occurs. Keywords are written in one
string per language, separated by spaces:

- ``odottaa``: a word whose Snowball stem equals this word's stem;
- ``~pysäk``: a part of a word (Finnish and Swedish compounds: "pysäköintipaikka");
- ``^ring``: the start of a word ("ringde", not "behandling");
- ``koko_ajan``: a phrase (underscores are spaces; its last word may go on: "sain_aja" is "sain ajan");
- ``-odotustila``: removed from the text before the theme's other keywords are looked for.

The tone counts positive and negative words of a small lexicon (same notation); a negation ("ei",
"inte", "not", …) turns the next three words round ("ei valittamista" is praise). Both kinds present
is ``mixed``; only positive is ``positive``; only negative, or neither but a negation ("kukaan ei
kertonut"), is ``negative``; neither is ``positive`` ("Kiitos!", "ok").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import snowballstemmer

from .model import MIXED, NEGATIVE, POSITIVE, THEMES, Assignment, Text

STEMMERS = {"fi": "finnish", "sv": "swedish", "en": "english"}
#: Words that turn the next NEGATION_SPAN words of their clause round, per language ("en" is Finnish
#: "I do not" but the Swedish article, so each language has its own).
NEGATIONS = {
    "fi": frozenset("ei en et emme ette eivät eikä enkä älä ilman".split()),
    "sv": frozenset("inte int ej icke aldrig utan inga ingen inget".split()),
    "en": frozenset(
        "not no never without nothing nobody dont didnt doesnt wasnt werent isnt cant couldnt wont".split()
    ),
}
NEGATION_SPAN = 3
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CLAUSE = re.compile(r"[.,;:!?()]+")

#: Per theme, per language: the keywords (notation in the module docstring).
THEME_RULES: dict[str, dict[str, str]] = {
    "waiting": {
        "fi": "-odotustil -odotushuon -odotusaul ~odot ~jono myöhässä ~ajallaan ~aikataulu ~minuutilleen "
        "~vartissa ~nopee ~venyi heti_sisään pääsin_heti ~tuntia ~tuntikau",
        "sv": "-väntrum ^vänt ^kö ^köa försenad senare ^snabb utsatt_tid på_sekunden ^timm ^halvtimm ^nummerlapp",
        "en": "-waiting_room -waiting_area -waiting_hall wait ^queue line_went late on_time right_away "
        "immediately ^hours in_and_out ^ages seen_within ^delay",
    },
    "friendliness": {
        "fi": "~ystävälli ~kohdel ~kohtelia ~tyly ~töykeä ~mukav ~ihana ~ihania ~empaat ~kuuntel ~lämmin ~lämmö "
        "~välit ~kunnioit ~tervehd ~esittäyty ~huomioi ~tiuska ~nöyryyt ~vähätel ~tuomit huippu ~asiallinen "
        "kiva ~välinpitäm ~epäkohtel",
        "sv": "~vänlig ~trevlig ~snäll ~bemöt ~bemött ~lyssna ~respekt ~gullig ~omtänksam ~hälsade ~brysk ~döm "
        "~otrevlig ~sucka ^personalen ~vårdarna tog_sig_tid ^trygg ^arrogant ^nedlåtande",
        "en": "friendly kind ~rude polite ^respect listen empathy warm lovely gentle patient ^impatient attitude "
        "judged sweet caring attentive was_cold ^sigh annoyed ^thoughtful apologized wonderful arrogant "
        "nice_staff staff_was_nice staff_were_nice was_very_nice were_friendly really_nice seriously",
    },
    "information": {
        "fi": "~kerro ~kerto ~selit ~selv ~ohje ~ohjeis ~tieto ~tiedo ~tiennyt ~tienny ~tuloks ~kirje ~perustel "
        "~kysymyks ~ymmärrä",
        "sv": "^info ^förklar ^instruktion ^berätt sa_inte ingen_sa ^oklar ^krånglig ^visste ingen_aning ^tydlig "
        "^kallelse ^skriftlig ^resultat ^beslut",
        "en": "explain ^explanation inform ^instruction told ^tell no_idea ^result letter ^communication question "
        "what_to_do what_happens",
    },
    "facilities": {
        "fi": "~tilat ~tilass ~tiloi ~odotushuon ~odotusaul ~siisti ~likai ~vessa ~opaste ~hissi ~pyörätuol "
        "~kuuma ~ilmastoin ~tunkka ~melu ~tuoli ~istumapaik ~istuime ~kahvi ~automaatti ~yksityisyy ~kuului "
        "~ahtaa ~viihtyis ~valois ~lelu ~rakennu ~ovi",
        "sv": "~smuts ~toalett ~skylt ~hiss ^rent ~fräsch ~kaffe ~stol ~trång ~dragig ~integritet ~överfull "
        "^rum ~lokal ~vattenautomat ^ljus ~mysig ~golv ~lamp ~leksak",
        "en": "-sign_language toilet dirty clean sign ^elevator hot ^freez cold_in chair coffee noisy noise "
        "privacy build entrance ^light ^window food cozy toy",
    },
    "phone": {
        "fi": "~puhel ~soit ~linja",
        "sv": "^ring ~telefon bröts_samtalet ~upptaget ~callback svarar_i_telefon ingen_svarar",
        "en": "phone call ^calling lines_are_busy on_hold picked_up ^reach answers_the",
    },
    "appointments": {
        "fi": "~ajanvar aikoja sain_ajan saada_ajan saa_ajan ajan_saa varata_ajan varaa_ajan uutta_aika "
        "uuden_ajan lapselle_aika aika_peru ~varasi ~varaam ~peru ~siirre ~pääsy pääsi_vasta pääsin_vasta "
        "pääsee_vasta ~kuukau ~jonon ~harvoin",
        "sv": "fick_tid fick_en_tid få_tid få_en_tid ny_tid nya_tid första_tid lediga_tid alla_tider ^boka "
        "~avbok ~tidsbok ~läkartid ~labbtid flyttat månader en_månad ^bokning ^återbud",
        "en": "appoint ^book cancel a_time change_my_time ^resched months slot next_visit",
    },
    "parking": {
        "fi": "~parkk ~pysäk auton ~bussi ~julkisil ~kävel ~matka ~inva ~sakko lähellä",
        "sv": "~parker p_plats ~buss ~hållplats ~taxi ^bil köra gå_långt långt_att_gå ^kilometer km",
        "en": "park ^bus drive car taxi far_from long_way getting_there get_here get_there km",
    },
    "care": {
        "fi": "-hoitola ~hoito ~hoidon ~tutki ~lääke ~lääkit ~lääkkei ~diagno ~ammattitai ~asiantunt ~pätevä "
        "~taitava ~huolellis ~perusteellis ~antibioo ~haava ~auttoi ~auttanut ~apua saman_lääkärin ~parempi "
        "~sattui ~pistää ~kuntoutu ~toimenpi ~rokotus ~löysi ~kiireinen",
        "sv": "-hälsovård -tandvård ^vård ^undersök ^behandl ^grundlig noga ^kunnig ^duktig ~medicin "
        "^kontinuitet samma_läkare byte_av_läkare ~övning ^fraktur ^smärt ont ^diagnos ^remiss ^recept "
        "mycket_bättre ^terapeut ^lagning",
        "en": "-home_care -health_care treatment examine ^diagnos ^medic thorough careful professional "
        "competent antibiotics same_doctor different_doctor continuity exercises better_now missed stitch wound "
        "proper_help care vein",
    },
    "language": {
        "fi": "~tulk ~ruotsi ~suome ~suomi ~englan ~kieli ~kielen ~kielinen",
        "sv": "~svensk ~finsk ~engelsk ~tolk ~språk ~modersmål",
        "en": "english finnish swedish interpret ^translat language",
    },
    "digital": {
        "fi": "-vesiautomaat ~netti ~netis ~omaolo ~chat ~sovellu ~tekstivies ~sähkö ~omakan ~automaatti "
        "~wilma ~video ~sms ~tietokone ~verkko",
        "sv": "^nätet ~webb ^app ~sms ~omaolo ~chatt ~wilma ~kanta ~självbetjäning ~självincheck ~elektronisk "
        "~video e_post ~mejl",
        "en": "online app website omaolo chat sms text_message email kiosk check_in self_check omakanta "
        "bank_id log_in video remind",
    },
}


#: The tone lexicon, per language (same notation; phrases count without negation).
POSITIVE_WORDS = {
    "fi": "~hyv ~kiito ~kiitt ~ihana ~kiva ~mukav ~ystävälli ~loistav ~erinomai ~helppo ~helposti ~nopea "
    "~nopee ~selkeä ~selkeät ~siisti ~hieno ~kätevä ~tyytyväi ~asiallinen ~kohtelia ~ammattitai ~huolellis "
    "~perusteellis ~pätevä ~taitava ~huippu jees ok ~toimi ~suosittel ~auttoi ~apua ~empaat ~lämmin ~lämmö "
    "~valois ~viihtyis ~tukea ~rauhallis ~kunnioit ~sujui ~ajallaan ~ilmai ~asiantunt ~välittä ~välitet",
    "sv": "^bra ^tack ^nöjd ^trevlig ^vänlig ~jättevänlig ^snäll ^smidig ^snabb ^lätt ^tydlig fin fint fina "
    "~jättebra ~superbra ~jättefin ^skön ^effektiv ^professionell ^duktig ^grundlig ^kunnig ^lugn ^trygg "
    "^gullig ^fantastisk ^rent ^fräsch ^mysig ^uppskatta ^respektfull ^omtänksam chill ^funka ^fungera "
    "^hjälp guld ok ^omsorg ^värdig",
    "en": "good great thank thanks kind friendly nice love amazing excellent easy quick fast clear help happy "
    "perfect smooth efficient clean cozy convenient ^useful gentle patient calm warm thorough care "
    "professional impressed wonderful best super appreciate recommend ok fine free handy lucky safe sweet "
    "thoughtful attentive satisfied well work smoothly",
}
NEGATIVE_WORDS = {
    "fi": "~huon ~tyly ~töyke ~likai ~sekav ~hankal ~vaike ~mahdot ~kestämät ~turha ~harmi ~liian ~myöhäs "
    "~rikki ~puuttu ~ongelm ~valitta ~moitit ~kommentoi ~miinus ~pelkä ~epäselv ~meluis ~ahta ~tunkka "
    "~kuuma ~kylmä ~nöyryyt ~vähätel ~pitkä ~kauan ~virhe ~väärä ~sakko ~ryöstö ~avuton ~toivoisi ~toivon "
    "~kannattai ~olisi ~vois ~pompot ~raskas ~katkesi ~varattu ~jonot ~odotti ~odotin ~odott ~kestä",
    "sv": "^dålig ^otrevlig ^smuts ^trasig ^sönder ^svår ^omöjlig ^jobbig ^krånglig ^oklar ^fel ^stress "
    "^försen sen ^urusel ^skämt ^brysk ^låst ^upptag kö kön ^läng ^böter ont ^önska ^kunde ^förvirr ^oro "
    "^klaga ^kommentera ^problem ^väntade ^vänta ^bättre ^tyvärr ^irra ^vilse ^tyckte",
    "en": "bad rude terrible dirty confusing broken impossible frustrating nightmare long late cold hot "
    "noisy slow expensive too wrong problem hard difficult worse cancel annoy judged crazy chaos disgusting pain "
    "worried scared miss error please complain could expect impatient sigh ticket hurt",
}


@dataclass(frozen=True, slots=True)
class _Rules:
    stems: frozenset[str]
    parts: tuple[str, ...]
    prefixes: tuple[str, ...]
    phrases: tuple[str, ...]
    unless: tuple[str, ...]


@cache
def stemmer(lang: str) -> Any:
    """The Snowball stemmer of ``lang`` (fi, sv, en), or None for another language."""
    return snowballstemmer.stemmer(STEMMERS[lang]) if lang in STEMMERS else None


def _stem(lang: str, words: list[str]) -> list[str]:
    found = stemmer(lang)
    return list(found.stemWords(words)) if found is not None else words


def _compile(lang: str, spec: str) -> _Rules:
    items = spec.split()
    plain = [i for i in items if i[0] not in "~^-" and "_" not in i]
    return _Rules(
        stems=frozenset(_stem(lang, plain)),
        parts=tuple(i[1:] for i in items if i[0] == "~"),
        prefixes=tuple(i[1:] for i in items if i[0] == "^"),
        phrases=tuple(" " + i.replace("_", " ") for i in items if i[0] not in "~^-" and "_" in i),
        unless=tuple(i[1:].replace("_", " ") for i in items if i[0] == "-"),
    )


def _compile_all(table: dict[str, str]) -> dict[str, _Rules]:
    return {lang: _compile(lang, spec) for lang, spec in table.items()}


_THEMES = {theme: _compile_all(THEME_RULES[theme]) for theme in THEMES}
_POSITIVE = _compile_all(POSITIVE_WORDS)
_NEGATIVE = _compile_all(NEGATIVE_WORDS)


def _clauses(text: str) -> list[list[str]]:
    """The lower-cased words of each clause (a negation reaches no further than its clause)."""
    text = text.lower().replace("n't", "nt").replace("n’t", "nt")
    return [words for part in _CLAUSE.split(text) if (words := WORD.findall(part))]


def _word_hits(rules: _Rules, word: str, stem: str) -> bool:
    return stem in rules.stems or any(p in word for p in rules.parts) or any(word.startswith(p) for p in rules.prefixes)


def _has_theme(rules: _Rules, lang: str, words: list[str], stems: list[str]) -> bool:
    if rules.unless:
        joined = " ".join(words)
        for phrase in rules.unless:
            joined = joined.replace(phrase, " ")
        words = joined.split()
        stems = _stem(lang, words)
    joined = " " + " ".join(words)
    if any(p in joined for p in rules.phrases):
        return True
    return any(_word_hits(rules, w, s) for w, s in zip(words, stems, strict=True))


def _tone(lang: str, clauses: list[list[str]]) -> str:
    if lang not in STEMMERS:
        lang = "en"
    pos_rules, neg_rules, negations = _POSITIVE[lang], _NEGATIVE[lang], NEGATIONS[lang]
    joined = " " + " ".join(w for words in clauses for w in words)
    positive = sum(1 for p in pos_rules.phrases if p in joined)
    negative = sum(1 for p in neg_rules.phrases if p in joined)
    seen_negation = False
    for words in clauses:
        negated = 0
        for word, stem in zip(words, _stem(lang, words), strict=True):
            if word in negations:
                negated, seen_negation = NEGATION_SPAN, True
                continue
            is_pos, is_neg = _word_hits(pos_rules, word, stem), _word_hits(neg_rules, word, stem)
            if negated:
                is_pos, is_neg = is_neg, is_pos
                negated -= 1
            positive += is_pos
            negative += is_neg
    if positive and negative:
        return MIXED
    if positive:
        return POSITIVE
    if negative or seen_negation:
        return NEGATIVE
    return POSITIVE


class KeywordThemes:
    """Themes and tone from hand-written keyword rules (a baseline; implements ``ThemeMethod``)."""

    name = "keywords"

    def assign(self, texts: Sequence[Text]) -> list[Assignment]:
        """Themes (in THEMES order) and tone for each text, in order."""
        out = []
        for text in texts:
            lang = text.lang.split("-")[0].lower()
            clauses = _clauses(text.text)
            words = [w for c in clauses for w in c]
            langs = [lang] if lang in STEMMERS else list(STEMMERS)
            stems = {lg: _stem(lg, words) for lg in langs}
            themes = tuple(t for t in THEMES if any(_has_theme(_THEMES[t][lg], lg, words, stems[lg]) for lg in langs))
            out.append(Assignment(themes, _tone(lang, clauses), self.name))
        return out

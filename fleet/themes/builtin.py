"""The built-in theme method: offline, learned from the shipped examples and staff corrections.

No text leaves the fleet server. Each text becomes two sets of features: its words reduced to their
Snowball stems in the text's language (Finnish and Swedish inflect heavily: "odotin", "odotusaika",
"odottaa" share a stem; a word after a negation is marked, so "ei tarvinnut odottaa" differs from
"odottaa") and the character 3–5-grams of its words (Finnish compounds: "pysäköintipaikka" shares
"pysäk" with "pysäköinti"; typos keep most of their n-grams). scikit-learn weights both by TF-IDF
and learns one logistic regression per theme and one for the tone. Each theme's probability
threshold is chosen by cross-validation on the training texts only; the evaluation set is never
seen (``evaluate.py``). docs/open-feedback.md has what was measured against what.

Staff corrections are added to the training texts (weighted above the shipped ones), and a new
text nearly identical to a corrected one takes the correction's themes outright: a recurring text
that was corrected once stays corrected.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import FunctionTransformer

from .examples import read_examples, shipped
from .keywords import NEGATION_SPAN, WORD, KeywordThemes, stemmer
from .model import THEMES, TONES, Assignment, Example, Text

__all__ = ["BuiltinThemes", "read_examples", "shipped"]

#: Words that negate what follows (a few words on).
NEGATIONS = frozenset(
    "ei en et emme ette eivät eikä älä ilman inte ej icke aldrig utan inga ingen not no never without "
    "dont didnt doesnt wasnt isnt cant couldnt wont nobody nothing".split()
)
#: Weight of a staff correction against one shipped example.
CORRECTION_WEIGHT = 3.0
#: Cosine similarity above which a new text takes a corrected text's labels outright.
NEAR_DUPLICATE = 0.9
#: Thresholds are searched on this grid (a theme's probability at or above it assigns the theme).
THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.15, 0.8, 0.05))
DEFAULT_THRESHOLD = 0.4
_SEP = "\x1f"  # between a text's language and its text inside the vectorisers' input


def stem_tokens(doc: str) -> list[str]:
    """Stemmed words and stem bigrams of ``lang<SEP>text``; words after a negation are marked ``!``."""
    return _tokens(doc, stem=True)


def word_tokens(doc: str) -> list[str]:
    """As :func:`stem_tokens` without stemming (``evaluate.py`` measures what stemming adds)."""
    return _tokens(doc, stem=False)


def _tokens(doc: str, stem: bool) -> list[str]:
    lang, _, text = doc.partition(_SEP)
    words = [w.replace("'", "") for w in WORD.findall(text.lower())]
    stemmer_ = stemmer(lang.split("-")[0]) if stem else None
    stems = stemmer_.stemWords(words) if stemmer_ is not None else words
    out: list[str] = []
    negated = 0
    for word, root in zip(words, stems, strict=True):
        if word in NEGATIONS:
            negated = NEGATION_SPAN
            out.append(root)
            continue
        out.append("!" + root if negated else root)
        negated = max(0, negated - 1)
    return out + [f"{a} {b}" for a, b in zip(out, out[1:], strict=False)]


def char_text(doc: str) -> str:
    """The text part of ``lang<SEP>text``, lower-cased, for the character n-grams."""
    return doc.partition(_SEP)[2].lower()


def _doc(lang: str, text: str) -> str:
    return f"{lang}{_SEP}{text}"


def rule_hits(docs: Sequence[str]) -> Any:
    """What the hand-written keyword rules (``keywords.py``) say of each ``lang<SEP>text``: one
    column per theme and per tone, 1 where the rules give it. The model learns how far to trust each
    rule, and staff corrections can outweigh a rule that misleads."""
    from scipy.sparse import csr_matrix

    got = KeywordThemes().assign([Text(*d.split(_SEP, 1)) for d in docs])
    columns = {name: i for i, name in enumerate((*THEMES, *TONES))}
    rows, cols = [], []
    for i, a in enumerate(got):
        for name in (*a.themes, a.tone):
            rows.append(i)
            cols.append(columns[name])
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(columns)))


def features(words: bool = True, chars: bool = True, stem: bool = True, rules: bool = True) -> FeatureUnion:
    """The feature extractor (every kind by default; ``evaluate.py`` measures the variants)."""
    parts: list[tuple[str, Any]] = []
    if rules:
        parts.append(("rules", FunctionTransformer(rule_hits, accept_sparse=True)))
    if words:
        analyzer = stem_tokens if stem else word_tokens
        parts.append(("words", TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=1)))
    if chars:
        parts.append(
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", preprocessor=char_text, ngram_range=(3, 5), sublinear_tf=True, min_df=2
                ),
            )
        )
    return FeatureUnion(parts)


def _classifier(binary: bool = True) -> LogisticRegression:
    """A theme's yes/no model (liblinear: fast on a few hundred sparse texts), or the tone's three-way one."""
    if binary:
        return LogisticRegression(C=8.0, class_weight="balanced", max_iter=2000, solver="liblinear")
    return LogisticRegression(C=8.0, class_weight="balanced", max_iter=2000)


class BuiltinThemes:
    """Themes and tone from a model trained on ``examples`` plus ``corrections`` when made."""

    name = "builtin"

    def __init__(
        self,
        examples: Sequence[Example],
        corrections: Sequence[Example] = (),
        *,
        words: bool = True,
        chars: bool = True,
        stem: bool = True,
        rules: bool = True,
        tune: bool = True,
    ) -> None:
        everything = [*examples, *corrections]
        if not everything:
            raise ValueError("the built-in theme method needs examples to learn from")
        docs = [_doc(e.lang, e.text) for e in everything]
        weights = np.array([1.0] * len(examples) + [CORRECTION_WEIGHT] * len(corrections))
        self._features = features(words, chars, stem, rules)
        x = self._features.fit_transform(docs)
        self._themes: dict[str, tuple[LogisticRegression | None, float, bool]] = {}
        for theme in THEMES:
            y = np.array([theme in e.themes for e in everything])
            if y.all() or not y.any():  # nothing to tell apart: the answer is constant
                self._themes[theme] = (None, DEFAULT_THRESHOLD, bool(y.all()))
                continue
            threshold = _tuned_threshold(x, y, weights) if tune else DEFAULT_THRESHOLD
            model = _classifier().fit(x, y, sample_weight=weights)
            self._themes[theme] = (model, threshold, False)
        # The tone learns from words and n-grams only: with the rules' tone as a feature it leaned on
        # rules tuned to the training texts and did worse on new ones (docs/open-feedback.md).
        self._tone_features = features(words, chars, stem, rules=False)
        tones = np.array([e.tone for e in everything])
        self._tone = _classifier(binary=False).fit(
            self._tone_features.fit_transform(docs), tones, sample_weight=weights
        )
        self._memory = [(c, self._features.transform([_doc(c.lang, c.text)])) for c in corrections]
        self.thresholds = {t: float(v[1]) for t, v in self._themes.items()}

    def assign(self, texts: Sequence[Text]) -> list[Assignment]:
        """Themes and tone for each text, in order."""
        if not texts:
            return []
        docs = [_doc(t.lang, t.text) for t in texts]
        x = self._features.transform(docs)
        chosen: list[list[str]] = [[] for _ in texts]
        for theme, (model, threshold, constant) in self._themes.items():
            if model is None:
                if constant:
                    for c in chosen:
                        c.append(theme)
                continue
            probs = model.predict_proba(x)[:, list(model.classes_).index(True)]
            for i, p in enumerate(probs):
                if p >= threshold:
                    chosen[i].append(theme)
        tones = self._tone.predict(self._tone_features.transform(docs))
        out = []
        for i, _ in enumerate(texts):
            remembered = self._remembered(x[i])
            if remembered is not None:
                out.append(Assignment(remembered.themes, remembered.tone, self.name))
            else:
                out.append(Assignment(tuple(chosen[i]), str(tones[i]), self.name))
        return out

    def _remembered(self, row: Any) -> Example | None:
        """The correction a text nearly repeats, if any (the most similar above NEAR_DUPLICATE)."""
        best, best_sim = None, NEAR_DUPLICATE
        for example, vec in self._memory:
            sim = _cosine(row, vec)
            if sim >= best_sim:
                best, best_sim = example, sim
        return best


_SHIPPED_LOCK = threading.Lock()
_shipped: BuiltinThemes | None = None


def shipped_model() -> BuiltinThemes:
    """The built-in method trained on the shipped texts alone, trained once per process (every fleet
    without corrections, and every web app in the tests, shares it)."""
    global _shipped
    with _SHIPPED_LOCK:
        if _shipped is None:
            _shipped = BuiltinThemes(shipped("train"))
        return _shipped


def _cosine(a: Any, b: Any) -> float:
    num = float(a.multiply(b).sum())
    den = float(np.sqrt(a.multiply(a).sum() * b.multiply(b).sum()))
    return num / den if den else 0.0


def _tuned_threshold(x: Any, y: np.ndarray, weights: np.ndarray) -> float:
    """The threshold with the best F1 over cross-validated probabilities on the training texts."""
    folds = min(5, int(y.sum()), int((~y).sum()))
    if folds < 2:
        return DEFAULT_THRESHOLD
    probs = cross_val_predict(
        _classifier(),
        x,
        y,
        cv=KFold(folds, shuffle=True, random_state=0),
        method="predict_proba",
        params={"sample_weight": weights},
    )[:, 1]
    best, best_f1 = DEFAULT_THRESHOLD, -1.0
    for t in THRESHOLDS:
        pred = probs >= t
        tp = float((pred & y).sum())
        f1 = 2 * tp / (pred.sum() + y.sum()) if (pred.sum() + y.sum()) else 0.0
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best

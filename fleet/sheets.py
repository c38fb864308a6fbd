"""Printable sheets as A4 SVG: terminal labels with claim codes, and each unit's poster and stickers.

Every sheet is one self-contained SVG document of 210 × 297 mm whose user unit is the millimetre
(``viewBox="0 0 210 297"``), opened in a browser and printed at actual size. QR codes come from
``qrcode`` as a module matrix (error correction M, a quiet zone of 4 modules) drawn here as one
``<path>`` of whole-module rectangles: crisp at any size and small. Documents are built with
ElementTree, which escapes every text (unit names may hold ``<``, ``&`` or quotes); fonts are the
generic families, so nothing is fetched from anywhere.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import qrcode
import qrcode.constants

SVG_NS = "http://www.w3.org/2000/svg"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: A4 portrait, in millimetres.
A4_WIDTH, A4_HEIGHT = 210.0, 297.0
#: The blank modules around a code, as the QR standard asks.
QUIET_ZONE = 4
#: Glyph advance per font size, a little over the real one so that text laid out here fits: the
#: generic monospace fonts (DejaVu Sans Mono, Liberation Mono, Courier) advance 0.60 em; sans-serif
#: text (Liberation Sans, DejaVu Sans) averages 0.40–0.48 em, bold a little more.
_MONO_EM, _SANS_EM, _BOLD_EM = 0.61, 0.5, 0.56
_INK, _GREY, _GUIDE = "#000000", "#555555", "#bbbbbb"
#: The print page: A4 at actual size without margins (Chromium and Firefox honour it in an SVG document).
PAGE_STYLE = "@page { size: 210mm 297mm; margin: 0 } svg { display: block }"
#: Characters XML 1.0 cannot carry at all (control characters other than tab and newline).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class LabelLayout:
    """A sheet of labels: columns × rows of width × height mm, the first at (left, top), then every pitch."""

    columns: int
    rows: int
    width: float
    height: float
    left: float
    top: float
    pitch_x: float
    pitch_y: float

    @property
    def per_sheet(self) -> int:
        """How many labels one sheet holds."""
        return self.columns * self.rows

    def origin(self, index: int) -> tuple[float, float]:
        """The top left corner of label ``index`` (row by row) on its sheet."""
        row, column = divmod(index % self.per_sheet, self.columns)
        return self.left + column * self.pitch_x, self.top + row * self.pitch_y


#: The common A4 sheet of 21 labels, 3 × 7 of 63.5 × 38.1 mm (Avery L7160 and its equivalents): side
#: margins 7.21 mm, 2.54 mm between columns, top and bottom margins 15.15 mm, rows touching.
LABELS_3X7 = LabelLayout(3, 7, 63.5, 38.1, 7.21, 15.15, 66.04, 38.1)
#: Stickers: 4 × 6 squares of 47.5 × 45 mm, cut by hand along light guides (or on sticker paper).
STICKERS_4X6 = LabelLayout(4, 6, 47.5, 45.0, 10.0, 13.5, 47.5, 45.0)


@dataclass(frozen=True, slots=True)
class PosterTexts:
    """The poster's words in its language: the invitation above the code and the notice below it."""

    invitation: str
    notice: str


# -- addresses ---------------------------------------------------------------------------------


def fleet_address(public_url: str, url_root: str) -> str:
    """The fleet web's address as people reach it, ending in a slash: the configured one, else this request's."""
    base = public_url.strip() or url_root
    return base if base.endswith("/") else base + "/"


def claim_url(address: str, device: str) -> str:
    """The address a terminal's label QR code carries: where staff claim the terminal."""
    return f"{address}claim/{quote(device, safe=':')}"


def feedback_address(doc: Mapping[str, Any] | None) -> str | None:
    """The open-feedback address of a configuration document, or None when it has none."""
    url = (doc or {}).get("feedback_url")
    return url if isinstance(url, str) and url.strip() else None


def sheet_count(count: int, layout: LabelLayout = LABELS_3X7) -> int:
    """How many sheets ``count`` labels take (at least one, so that an empty fleet still has a page)."""
    return max(1, math.ceil(count / layout.per_sheet))


# -- QR codes ----------------------------------------------------------------------------------


def qr_matrix(text: str) -> list[list[bool]]:
    """The code's modules for ``text``, True for dark, with the quiet zone; error correction M."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE)
    code.add_data(text)
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.get_matrix()]


def qr_path(matrix: Sequence[Sequence[bool]]) -> str:
    """Path data of the dark modules, one rectangle per horizontal run, one module per unit."""
    parts = []
    for y, row in enumerate(matrix):
        x, n = 0, len(row)
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


def _qr(parent: ET.Element, text: str, x: float, y: float, side: float) -> ET.Element:
    """A QR code of ``text`` as a square of ``side`` mm at (x, y), quiet zone included."""
    matrix = qr_matrix(text)
    n = len(matrix)
    box = ET.SubElement(
        parent,
        "svg",
        {"class": "qr", "x": _n(x), "y": _n(y), "width": _n(side), "height": _n(side), "viewBox": f"0 0 {n} {n}"},
    )
    ET.SubElement(box, "rect", {"width": str(n), "height": str(n), "fill": "#ffffff"})
    ET.SubElement(box, "path", {"d": qr_path(matrix), "fill": _INK, "shape-rendering": "crispEdges"})
    return box


# -- text --------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A length in mm, short: 12, 12.5, 7.21."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _clean(text: str) -> str:
    """``text`` without the characters XML cannot hold, on one line."""
    return " ".join(_NOT_XML.sub("", text).split())


def _wrap(text: str, chars: int) -> list[str]:
    """``text`` in lines of at most ``chars`` characters, broken between words (inside a word too long)."""
    chars = max(1, chars)
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > chars:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:chars])
            word = word[chars:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= chars:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines or [""]


def _fit(
    text: str, width: float, largest: float, smallest: float, max_lines: int, em: float
) -> tuple[float, list[str]]:
    """The largest font size (mm, in 0.25 mm steps) at which ``text`` fits ``width`` in ``max_lines``
    lines, and those lines; at ``smallest`` the text takes as many lines as it needs."""
    size = largest
    while size > smallest:
        lines = _wrap(text, int(width / (size * em)))
        if len(lines) <= max_lines:
            return size, lines
        size -= 0.25
    return smallest, _wrap(text, int(width / (smallest * em)))


def _text(
    parent: ET.Element,
    lines: Sequence[str],
    x: float,
    y: float,
    size: float,
    *,
    family: str = "sans-serif",
    anchor: str = "middle",
    bold: bool = False,
    fill: str = _INK,
    leading: float = 1.2,
) -> float:
    """Lines of text whose first baseline is at ``y``; returns the last baseline."""
    attrs = {
        "x": _n(x),
        "y": _n(y),
        "font-family": family,
        "font-size": _n(size),
        "text-anchor": anchor,
        "fill": fill,
    }
    if bold:
        attrs["font-weight"] = "bold"
    element = ET.SubElement(parent, "text", attrs)
    if len(lines) == 1:
        element.text = lines[0]
        return y
    for i, line in enumerate(lines):
        span = ET.SubElement(element, "tspan", {"x": _n(x), "dy": "0" if i == 0 else _n(size * leading)})
        span.text = line
    return y + (len(lines) - 1) * size * leading


def _document(title: str, lang: str | None = None) -> ET.Element:
    """An empty A4 sheet with its title (what a screen reader and the browser's tab say)."""
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "version": "1.1",
            "width": f"{_n(A4_WIDTH)}mm",
            "height": f"{_n(A4_HEIGHT)}mm",
            "viewBox": f"0 0 {_n(A4_WIDTH)} {_n(A4_HEIGHT)}",
        },
    )
    if lang:
        root.set(_XML_LANG, lang)
    ET.SubElement(root, "title").text = _clean(title)
    # Printed from the browser: an A4 page without the browser's margins, so labels meet their sheet.
    ET.SubElement(root, "style").text = PAGE_STYLE
    ET.SubElement(root, "rect", {"width": _n(A4_WIDTH), "height": _n(A4_HEIGHT), "fill": "#ffffff"})
    return root


def _serialise(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- sheets ------------------------------------------------------------------------------------


def _id_lines(device: str, width: float, height: float) -> tuple[float, list[str]]:
    """A terminal id in 1–3 monospace lines, as large as fits (at most 9 mm): on one line whenever it
    is legible there (a broken id reads as two), else broken after - . _ or : where one is near."""
    best: tuple[float, list[str]] = (0.0, [device])
    for count in (1, 2, 3):
        lines = _split_id(device, count)
        longest = max(len(line) for line in lines)
        size = min(9.0, width / (longest * _MONO_EM), height / (len(lines) * 1.15))
        if count == 1 and size >= 5.0:
            return size, lines
        if size > best[0]:
            best = (size, lines)
    return best


def _split_id(device: str, count: int) -> list[str]:
    """``device`` in at most ``count`` lines of about equal length, broken after a separator when one is near."""
    lines = []
    rest = device
    for left in range(count, 1, -1):
        ideal = math.ceil(len(rest) / left)
        if len(rest) <= 1 or ideal >= len(rest):
            break
        near = [i + 1 for i, c in enumerate(rest[:-1]) if c in "-._:" and abs(i + 1 - ideal) <= ideal // 2]
        cut = min(near, key=lambda i: (abs(i - ideal), i)) if near else ideal
        lines.append(rest[:cut])
        rest = rest[cut:]
    return [*lines, rest]


def label_sheet(
    devices: Sequence[str],
    address: str,
    caption: str,
    title: str,
    layout: LabelLayout = LABELS_3X7,
) -> str:
    """One sheet of terminal labels: each the claim code and, beside it, the id in large monospace,
    a ``caption`` above and the fleet's host below; at most ``layout.per_sheet`` devices."""
    if len(devices) > layout.per_sheet:
        raise ValueError(f"one sheet holds {layout.per_sheet} labels, not {len(devices)}")
    root = _document(title)
    host = address.split("//", 1)[-1].rstrip("/")
    pad = 1.5
    side = min(32.0, layout.height - 2 * pad)
    for index, device in enumerate(devices):
        x, y = layout.origin(index)
        label = ET.SubElement(root, "g", {"class": "label"})
        _qr(label, claim_url(address, device), x + pad, y + (layout.height - side) / 2, side)
        left = x + pad + side
        width = x + layout.width - 2.5 - left
        middle = left + width / 2
        small = 2.6
        _text(label, [_clean(caption)], middle, y + 6.5, small, fill=_GREY)
        size, lines = _id_lines(device, width, layout.height - 17)
        block = size * 1.15 * (len(lines) - 1)
        first = y + layout.height / 2 + size * 0.35 - block / 2
        _text(label, lines, middle, first, size, family="monospace", bold=True, leading=1.15)
        host_size = min(2.2, width / max(1, len(host) * _SANS_EM))
        if host_size >= 1.6:
            _text(label, [host], middle, y + layout.height - 4, host_size, fill=_GREY)
    return _serialise(root)


def poster(name: str, url: str, lang: str, texts: PosterTexts, title: str) -> str:
    """A unit's A4 poster: its name, the invitation, a large code of its feedback address with the
    address under it, and the notice not to write health or identity information."""
    root = _document(title, lang)
    margin, width = 20.0, A4_WIDTH - 40.0
    middle = A4_WIDTH / 2
    # The top band: the unit's name, then the invitation.
    ET.SubElement(root, "rect", {"width": _n(A4_WIDTH), "height": "8", "fill": "#1f5f8b"})
    size, lines = _fit(_clean(name), width, 15.0, 7.0, 3, _BOLD_EM)
    last = _text(root, lines, middle, margin + 8 + size * 0.8, size, bold=True)
    inv_size, inv_lines = _fit(_clean(texts.invitation), width, 10.0, 6.0, 2, _SANS_EM)
    last = _text(root, inv_lines, middle, last + size * 0.45 + inv_size * 1.3, inv_size)
    # The notice at the foot, in a box.
    note_size, note_lines = _fit(_clean(texts.notice), width - 16, 6.0, 4.5, 3, _BOLD_EM)
    box_h = len(note_lines) * note_size * 1.25 + 10
    box_y = A4_HEIGHT - margin - box_h
    ET.SubElement(
        root,
        "rect",
        {
            "x": _n(margin),
            "y": _n(box_y),
            "width": _n(width),
            "height": _n(box_h),
            "rx": "3",
            "fill": "#fff4d6",
            "stroke": "#b8860b",
            "stroke-width": "0.8",
        },
    )
    first = box_y + 5 + note_size * 0.9
    _text(root, note_lines, middle, first, note_size, bold=True, leading=1.25)
    # The address in type (for anyone without a camera), above the notice, when it is short enough.
    url_text = _clean(url)
    url_size = min(5.0, width / max(1, len(url_text) * _MONO_EM))
    url_room = 0.0
    if url_size >= 3.0:
        url_room = url_size + 6
        _text(root, [url_text], middle, box_y - 6, url_size, family="monospace", fill=_GREY)
    # The code takes what is left between.
    top = last + inv_size * 0.6 + 4
    bottom = box_y - url_room - 2
    side = min(150.0, bottom - top, width + 10)
    _qr(root, url, middle - side / 2, top + (bottom - top - side) / 2, side)
    return _serialise(root)


def sticker_sheet(name: str, url: str, lang: str, title: str, layout: LabelLayout = STICKERS_4X6) -> str:
    """A sheet of small stickers, each the code of the unit's feedback address and the unit's name,
    for appointment cards, ambulances and staff badges; light guides show where to cut."""
    root = _document(title, lang)
    label = _clean(name)
    size, lines = _fit(label, layout.width - 4, 3.4, 2.2, 2, _BOLD_EM)
    side = layout.height - 3.5 - len(lines) * size * 1.2
    for index in range(layout.per_sheet):
        x, y = layout.origin(index)
        cell = ET.SubElement(root, "g", {"class": "sticker"})
        ET.SubElement(
            cell,
            "rect",
            {
                "x": _n(x),
                "y": _n(y),
                "width": _n(layout.width),
                "height": _n(layout.height),
                "fill": "none",
                "stroke": _GUIDE,
                "stroke-width": "0.2",
                "stroke-dasharray": "1 1",
            },
        )
        _qr(cell, url, x + (layout.width - side) / 2, y + 1, side)
        _text(cell, lines, x + layout.width / 2, y + 1 + side + size * 0.6, size, bold=True)
    return _serialise(root)

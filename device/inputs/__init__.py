"""Input sources that turn hardware into answers, behind one small interface (``AnswerSource``).

Each source calls ``on_answer(answer)`` from its own thread (gpiozero's, or a serial reader), so
the callback must be thread-safe: the kiosk's loop owns the Terminal, and ``on_answer`` only posts
an event to that loop. After the loop has recorded the press it calls ``feedback`` to thank the
person on the source's LEDs, where it has any.
"""

from __future__ import annotations

from .base import AnswerCallback, AnswerSource, InputError

__all__ = ["AnswerCallback", "AnswerSource", "InputError"]

"""The kiosk's screens: views (what to show), compose (from the configuration), screens (drawing), and helpers.

Drawing goes through a Canvas that records every text fit and touch target, so tests can prove
that no text overflows and no target is under 9 mm on any screen, language or size.
"""

import os

# pygame prints a greeting on import; in a kiosk's journal it is noise.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

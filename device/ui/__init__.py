"""The kiosk's screens: views (what to show), compose (from the configuration), screens (drawing), and helpers.

Drawing goes through a Canvas that records every text fit and touch target, so tests can prove
that no text overflows and no target is under 9 mm on any screen, language or size.
"""

"""The fleet web's settings: defaults, then a TOML file, then ``HYMY_``-prefixed environment variables.

Each later source overrides the earlier ones, so a systemd unit or a container can change one value
(``HYMY_METRICS_TOKEN``) without editing the file an administrator keeps.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

ENV_PREFIX = "HYMY_"


class SettingsError(ValueError):
    """A settings file or variable that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    """What the fleet web needs to run."""

    #: The fleet database: a SQLite file or a postgresql:// URL.
    db: str = "fleet.db"
    #: Bearer token a Prometheus scraper sends for /metrics; empty: /metrics refuses every request.
    metrics_token: str = ""


def load_settings(file: Path | None = None, environ: Mapping[str, str] | None = None, **given: str | None) -> Settings:
    """Defaults, overridden by ``file`` (TOML, top-level keys), then by ``HYMY_<KEY>`` variables, then by
    ``given`` (command-line options; None means not given)."""
    settings = Settings()
    names = {f.name for f in fields(Settings)}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"settings file {file}: {exc}") from exc
        unknown = sorted(set(data) - names)
        if unknown:
            raise SettingsError(f"settings file {file}: unknown setting(s) {', '.join(unknown)}")
        for key, value in data.items():
            if not isinstance(value, str):
                raise SettingsError(f"settings file {file}: {key} must be a string, got {value!r}")
        settings = replace(settings, **data)
    env = os.environ if environ is None else environ
    from_env = {n: env[ENV_PREFIX + n.upper()] for n in names if ENV_PREFIX + n.upper() in env}
    settings = replace(settings, **from_env)
    return replace(settings, **{k: v for k, v in given.items() if v is not None and k in names})

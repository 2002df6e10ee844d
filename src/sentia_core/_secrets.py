"""Masking secrets before anything is printed, logged or raised.

Theory of operation: secrets reach sentia_core in three shapes — credentials
inside a URL (``redis://:PASSWORD@host/0``, ``?password=``), a URL that *is*
a secret (a Slack or other incoming-webhook URL carries its token in the
path), and plain secret values (a signing key, an SMTP password). Every repr,
error message and log line the library writes goes through one of the three
functions here, so a test can plant distinctive secrets and scan the output.
:func:`mask_text` is the last line of defence: :class:`~sentia_core.errors.ConfigError`
runs every message through it, so a URL with credentials pasted into any
setting is masked even where nobody thought of it.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["MASK", "mask", "mask_text", "mask_url", "mask_webhook_url"]

#: What a secret is replaced with.
MASK = "***"

# userinfo of a URL: everything between "//" and the last "@" before the host
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,30}://)(?P<userinfo>[^/?#@\s]*)@")
# query parameters whose value is a credential
_SECRET_PARAM = re.compile(
    r"(?P<name>(?<=[?&;])(?:password|passwd|pwd|secret|token|auth|key|signature|sig|"
    r"access_token|api_key|apikey)=)(?P<value>[^&#\s'\"]*)",
    re.IGNORECASE,
)
# a URL anywhere in a text (bounded so a hostile text cannot make this slow)
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^\s'\"<>]{0,4096}")


def mask(value: object) -> str:
    """``"***"`` for a set secret, ``"None"`` for an unset one (so "is it set?" stays visible)."""
    return "None" if value is None else MASK


def _userinfo(m: re.Match[str]) -> str:
    info = m.group("userinfo")
    user, sep, _ = info.partition(":")
    # "user:password@" keeps the user; a lone "token@" is all secret
    shown = f"{user}:{MASK}" if sep and user else MASK
    return f"{m.group('scheme')}{shown}@"


def mask_url(url: str) -> str:
    """``url`` with its password (or lone userinfo) and secret query values masked.

    ``redis://:pw@host:6379/0`` becomes ``redis://:***@host:6379/0``... with the
    user kept when there is one: ``redis://app:***@host/0``.
    """
    out = _USERINFO.sub(_userinfo, url, count=1)
    if "?" in out:
        out = _SECRET_PARAM.sub(lambda m: m.group("name") + MASK, out)
    return out


def mask_webhook_url(url: str) -> str:
    """A webhook URL reduced to scheme and host: its path and query are the secret."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    return f"{parts.scheme}://{host}{port}/{MASK}"


def mask_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`mask_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)

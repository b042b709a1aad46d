"""URLs of tracking stores and tuning storages: passwords out of messages, paths told from typos."""

import re

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")  # C:\ or C:/, the one colon a local path may hold


def mistyped_url(path: str) -> bool:
    """Whether ``path``, meant as a local path, holds a ``:`` (but a drive's) or ``//``: a mistyped URL.

    ``postgres:/db``, ``sqlite//optuna.db`` and ``::::`` would otherwise become files of those names.

    Examples
    --------
    >>> mistyped_url("sqlite//optuna.db"), mistyped_url("studies/optuna.db"), mistyped_url("C:/optuna.db")
    (True, False, False)
    """
    return (":" in path and not _DRIVE.match(path)) or "//" in path.replace("\\", "/")


def redact_url(url) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``; malformed URLs too.

    Examples
    --------
    >>> redact_url("postgresql://tuner:secret@db:5432/optuna")
    'postgresql://tuner:***@db:5432/optuna'
    >>> redact_url("postgres:/tuner:secret@db")
    'postgres:***@db'
    >>> redact_url("sqlite:///optuna.db")
    'sqlite:///optuna.db'
    """
    text = str(url)
    credentials, at, host = text.rpartition("@")
    if not at:
        return text
    scheme, sep, userinfo = credentials.partition("//")
    if not sep:
        scheme, userinfo = "", credentials
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}:***@{host}" if colon else text

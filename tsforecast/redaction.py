"""Passwords out of URLs before they reach a message, a log line or MLflow (storages, tracking URIs)."""


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

"""Download one file whole or not at all, for the dataset loaders.

:func:`fetch` writes into a temporary file beside the target, checks the byte count against the
server's ``Content-Length``, the SHA-256 when it is known and, optionally, the content, and only
then renames the file into place (atomic on one file system). An interrupted, truncated or altered
download therefore never appears under the target's name, and nothing of it is left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from tsforecast.exceptions import InvalidInputError

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0  # per connection attempt and per read: a stalled server fails instead of hanging
_CHUNK = 1 << 16


def fetch(
    url: str,
    target,
    *,
    sha256: str | None = None,
    check: Callable[[Path], object] | None = None,
    verbose: bool | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``target``, verified, through a temporary file and an atomic rename.

    Parameters
    ----------
    url : str
        An ``http(s)://`` (or ``file://``) address.
    target : str or Path
        Where the file goes; its folder is created when missing.
    sha256 : str, optional
        The expected SHA-256 (hex) of the file; a different one is refused.
    check : callable, optional
        Called with the path of the complete temporary file before the rename; it raises
        :class:`InvalidInputError` for content that is not what was expected.
    verbose : bool, optional
        A progress bar on stderr: always (True), never (False), or when stderr is a terminal (None).
    timeout : float, default=30
        Seconds to wait for the connection and for each read.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    InvalidInputError
        The server cannot be reached, answers with an error, sends fewer or more bytes than it
        announced, or sends a file with another checksum or content; or the folder is not writable.
        The message names the URL and the cause; no file is left at ``target`` or beside it.

    Examples
    --------
    >>> fetch("https://example.org/data.csv", "cache/data.csv")  # doctest: +SKIP
    PosixPath('cache/data.csv')
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        raise InvalidInputError(f"cannot write into {target.parent}: {error}") from None
    done = False
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _copy(url, out, target.name, verbose, timeout)
        if sha256 is not None and digest != sha256:
            raise InvalidInputError(
                f"{url} sent a file whose SHA-256 is {digest}, not the {sha256} of {target.name}: a "
                "changed or damaged copy, refused."
            )
        if check is not None:
            try:
                check(Path(temporary))
            except InvalidInputError as error:
                raise InvalidInputError(f"{url}: {error}") from None
        os.replace(temporary, target)
        done = True
    finally:
        if not done:  # also on Ctrl-C: no partial file stays behind
            Path(temporary).unlink(missing_ok=True)
    logger.info("downloaded %s to %s", url, target)
    return target


def _copy(url: str, out, name: str, verbose: bool | None, timeout: float) -> str:
    """Stream ``url`` into the open file ``out``; the SHA-256 of what was received."""
    from tqdm import tqdm

    digest, received, announced = hashlib.sha256(), 0, None
    try:
        with urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            announced = int(length) if length and length.strip().isdigit() else None
            bar = tqdm(
                total=announced, desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                disable=None if verbose is None else not verbose,
            )  # fmt: skip
            with bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except HTTPError as error:
        raise InvalidInputError(f"{url}: the server answered HTTP {error.code} ({error.reason}).") from None
    except URLError as error:  # no connection: refused, unknown host, no route, timed out
        raise InvalidInputError(f"cannot connect to {url} ({error.reason}).") from None
    except TimeoutError:
        raise InvalidInputError(f"{url}: no data for {timeout:g} s after {received} bytes.") from None
    except (HTTPException, ConnectionError) as error:
        raise InvalidInputError(
            f"{url}: the connection broke after {received} bytes ({type(error).__name__}: {error})."
        ) from None
    except ValueError as error:  # not a URL urllib knows
        raise InvalidInputError(f"cannot download {url!r}: {error}.") from None
    except OSError as error:  # the local side: a full disk, a read-only folder
        raise InvalidInputError(f"downloading {url} failed: {error}") from None
    if announced is not None and received != announced:
        raise InvalidInputError(
            f"{url}: the download stopped after {received} of the {announced} bytes the server announced."
        )
    return digest.hexdigest()

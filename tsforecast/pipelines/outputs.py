"""Atomic, per-as-of output folders of a pipeline, and the lock that keeps two runs apart.

Layout under ``outputs.dir``::

    2024-05-31 -> .versions/2024-05-31.3f9c...   one symlink per --as-of date
    current    -> .versions/2024-05-30.8a1b...   the run whose model is current (last that passed)
    .versions/                                   complete run folders (and *.tmp while writing)
    .lock                                        held by the running pipeline

A run writes its files into ``.versions/<as-of>.<token>.tmp``, fsyncs them, renames the folder to
``.versions/<as-of>.<token>`` and then atomically replaces the ``<as-of>`` symlink (``os.replace`` of
a new link). A reader, or a run killed at any instant, therefore sees either the complete previous
folder or the complete new one. Folders no link points to (a replaced run, a killed run's ``.tmp``)
are deleted by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from tsforecast.exceptions import UnavailableError
from tsforecast.pipelines.schema import ConfigError

logger = logging.getLogger(__name__)

VERSIONS = ".versions"
CURRENT = "current"
LOCK = ".lock"


class OutputStore:
    """The output folder of one pipeline.

    Parameters
    ----------
    root : str or Path
        ``outputs.dir`` of the pipeline; created when missing.

    Examples
    --------
    >>> import tempfile
    >>> store = OutputStore(tempfile.mkdtemp())
    >>> with store.locked(), store.staging("2024-05-31") as folder:
    ...     _ = (folder / "a.txt").write_text("hello")
    ...     published = store.publish(folder, "2024-05-31", make_current=True)
    >>> (store.root / "2024-05-31" / "a.txt").read_text()
    'hello'
    """

    def __init__(self, root):
        self.root = Path(root)

    def check(self, labels=()) -> None:
        """Raise unless the run can publish here: checked before any work, so a run fails fast.

        The root (created when missing) and its ``.versions`` must take new files, and each of
        ``labels`` (an as-of date, ``current``) must be absent or a link this store wrote.

        Raises
        ------
        ConfigError
            Naming ``outputs.dir`` and the path (exit 2: a retry fails the same way).
        """
        from tsforecast.data.io import check_writable
        from tsforecast.exceptions import InvalidParameterError

        try:
            check_writable(self.root, folder=True)
            check_writable(self.root / VERSIONS, folder=True)
        except InvalidParameterError as error:
            raise ConfigError(f"outputs.dir: {error}") from None
        for label in labels:
            self._check_link(self.root / label)

    @contextmanager
    def locked(self):
        """Hold the pipeline's lock; raise :class:`UnavailableError` if another run holds it.

        Raises :class:`ConfigError` when the root cannot take files (:meth:`check`).
        """
        import fcntl

        self.check()
        with open(self.root / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise UnavailableError(
                    f"another run of this pipeline is in progress (lock {self.root / LOCK} held by pid "
                    f"{holder}); try again when it has finished."
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                self.collect_garbage()
                yield self
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def staging(self, label: str):
        """A fresh temporary folder for the run's files; removed if the block raises."""
        versions = self.root / VERSIONS
        versions.mkdir(parents=True, exist_ok=True)
        folder = versions / f"{label}.{uuid.uuid4().hex[:12]}.tmp"
        folder.mkdir()
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def publish(self, staged: Path, label: str, make_current: bool) -> Path:
        """Make the staged folder the ``label`` folder (and ``current``) atomically.

        Returns
        -------
        Path
            The ``<root>/<label>`` path (a symlink to the published folder).
        """
        for item in staged.iterdir():
            _fsync(item)
        _fsync(staged)
        final = staged.with_name(staged.name.removesuffix(".tmp"))
        os.replace(staged, final)
        _fsync(final.parent)
        target = Path(VERSIONS) / final.name
        self._point(label, target)
        if make_current:
            self._point(CURRENT, target)
        self.collect_garbage()
        return self.root / label

    def current_as_of(self) -> str | None:
        """The ``as_of`` of the run the ``current`` link points to."""
        manifest = self._manifest(self.root / CURRENT)
        return None if manifest is None else manifest.get("as_of")

    def model_before(self, as_of: str) -> tuple[str, Path] | None:
        """The as-of date and model file of the latest successful run for a date before ``as_of``.

        That is the model that was current when the ``as_of`` run started the first time, so a rerun
        of the same date compares with the same model (and gives the same outputs).
        """
        runs = []
        for link in self.root.iterdir():
            manifest = self._manifest(link) if link.name != CURRENT else None
            if manifest and manifest.get("status") == "success" and manifest.get("as_of", "") < as_of:
                model_file = (manifest.get("model") or {}).get("file")
                if model_file and (link / model_file).is_file():
                    runs.append((manifest["as_of"], link / model_file))
        return max(runs) if runs else None

    @staticmethod
    def _manifest(link: Path) -> dict | None:
        path = link / "manifest.json"
        if not link.is_symlink() or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def collect_garbage(self) -> None:
        """Delete run folders no link points to (replaced runs, killed runs' temporary folders)."""
        for stale in self.root.glob(".*.link"):  # a run killed between creating and renaming a link
            stale.unlink(missing_ok=True)
        versions = self.root / VERSIONS
        if not versions.is_dir():
            return
        kept = {link.resolve() for link in self.root.iterdir() if link.is_symlink()}
        for folder in versions.iterdir():
            if folder.resolve() not in kept:
                shutil.rmtree(folder, ignore_errors=True)
                logger.debug("removed unused output folder %s", folder)

    @staticmethod
    def _check_link(link: Path) -> None:
        if link.exists() and not link.is_symlink():
            kind = "folder" if link.is_dir() else "file"
            raise ConfigError(
                f"outputs.dir: {link} is a real {kind}, not a link written by tsforecast; move it away so "
                "the pipeline can publish its outputs there."
            )

    def _point(self, name: str, target: Path) -> None:
        link = self.root / name
        self._check_link(link)
        temporary = self.root / f".{name}.{uuid.uuid4().hex[:8]}.link"
        os.symlink(target, temporary)
        os.replace(temporary, link)
        _fsync(self.root)


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder's fsync makes renames durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["OutputStore"]

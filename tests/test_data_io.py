"""Where outputs may be written (:mod:`tsforecast.data.io`): ``check_writable`` and the writers refuse
an unusable place naming the path (issue 15, item 7: exit 2, not a traceback).

The same refusals through the real commands are in ``test_faults.py``.
"""

import os

import pytest

from tsforecast.data.io import check_writable, write_bytes
from tsforecast.exceptions import InvalidParameterError
from tsforecast.pipelines import ConfigError
from tsforecast.pipelines.outputs import OutputStore


def test_write_helpers_refuse_unusable_places_with_the_path(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(
        InvalidParameterError, match=r"blocker/out\.csv: cannot write there \(.*blocker is not"
    ):
        check_writable(blocker / "out.csv")
    with pytest.raises(InvalidParameterError, match=r"is a folder"):
        check_writable(tmp_path)
    with pytest.raises(InvalidParameterError, match=r"blocker/deep/f\.json: cannot write there"):
        write_bytes(b"{}", blocker / "deep" / "f.json")
    assert check_writable(tmp_path / "new" / "sub" / "f.csv").parent.is_dir()  # created, as documented
    assert check_writable(tmp_path / "new", folder=True) == tmp_path / "new"
    assert sorted(p.name for p in (tmp_path / "new").rglob("*")) == ["sub"]  # no probe left behind
    with pytest.raises(ConfigError, match=r"outputs.dir: .*blocker/out: cannot write there"):
        with OutputStore(blocker / "out").locked():
            pass


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permission bits do not bind root")
def test_a_read_only_folder_is_refused_with_the_path(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InvalidParameterError, match=r"Permission denied: .*locked"):
            check_writable(locked / "out.csv")
    finally:
        locked.chmod(0o700)

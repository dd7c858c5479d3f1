"""Hardening: files as the umask says, clear errors instead of tracebacks, no lost runs."""

import os
import stat

import pytest

from nvdrec.io.files import atomic_write_bytes, file_mode


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    got = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert got == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask

"""The generated secret is written atomically: a temporary file, fsynced, renamed into place, the directory fsynced.

It used to be created in place and written without fsync: a filesystem error left a 0-byte `secret_key`, the app
then refused to start, and deleting the file loses every stored API key."""

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import config
from services.errors import ConfigError


@pytest.fixture
def full_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory on a 1 MB tmpfs filled to the last byte (root only; skipped elsewhere, saying why)."""
    mount_point = tmp_path / 'mnt'
    mount_point.mkdir()
    command = ['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', str(mount_point)]
    if subprocess.run(command, check=False, capture_output=True).returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root and mount rights): a full filesystem needs one')
    try:
        filler = mount_point / 'filler'
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b'x' * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        data_dir = mount_point / 'data'
        data_dir.mkdir(mode=0o700)
        monkeypatch.setenv('CXT_DATA_DIR', str(data_dir))
        yield data_dir
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


def test_a_failed_write_leaves_no_damaged_secret_and_the_next_start_makes_one(full_data_dir: Path) -> None:
    settings = config.load_settings()
    with pytest.raises(OSError):
        config.resolve_secret_key(settings)
    assert sorted(path.name for path in full_data_dir.iterdir()) == [], 'no empty or temporary file left behind'
    (full_data_dir.parent / 'filler').unlink()  # room again
    secret = config.resolve_secret_key(settings)
    assert len(secret) >= 16
    assert config.resolve_secret_key(settings) == secret


def test_the_secret_and_its_directory_are_fsynced_before_it_is_used(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f'/proc/self/fd/{fd}'))
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', recording_fsync)
    settings = config.load_settings()
    secret = config.resolve_secret_key(settings)
    path = (isolated_environment / 'secret_key').resolve()
    assert path.read_text().strip() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data_dir = str(isolated_environment.resolve())
    assert data_dir in synced, 'the directory holding the new name is fsynced'
    file_synced = [name for name in synced if name != data_dir]
    assert file_synced and all(name.startswith(data_dir + '/') for name in file_synced)
    assert synced.index(data_dir) > synced.index(file_synced[0]), 'the content first, then the name'
    assert sorted(p.name for p in isolated_environment.iterdir()) == ['secret_key'], 'no temporary file left'


def test_a_damaged_secret_is_still_refused(isolated_environment: Path) -> None:
    settings = config.load_settings()
    (isolated_environment / 'secret_key').write_text('')
    with pytest.raises(ConfigError, match='damaged'):
        config.resolve_secret_key(settings)

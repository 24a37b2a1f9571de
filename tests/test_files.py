"""Atomic writes get the file mode the user chose (HELIXFLOW_FILE_MODE) or the umask's."""

import os
import subprocess
import sys

WRITE = "import sys; from hpc.files import atomic_write_text; atomic_write_text(sys.argv[1], 'x')"


def write_with(tmp_path, **env):
    path = tmp_path / "f.txt"
    done = subprocess.run([sys.executable, "-c", WRITE, str(path)], capture_output=True, text=True,
                          env={**os.environ, **env})
    return done, path


def test_the_mode_follows_helixflow_file_mode_or_the_umask(tmp_path):
    done, path = write_with(tmp_path, HELIXFLOW_FILE_MODE="0640")
    assert done.returncode == 0, done.stderr
    assert path.stat().st_mode & 0o777 == 0o640
    path.unlink()
    env = {k: v for k, v in os.environ.items() if k != "HELIXFLOW_FILE_MODE"}
    done = subprocess.run(["bash", "-c", f"umask 027; exec {sys.executable} -c \"{WRITE}\" {path}"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_bad_mode_is_refused_naming_the_variable(tmp_path):
    done, path = write_with(tmp_path, HELIXFLOW_FILE_MODE="rw-r-----")
    assert done.returncode != 0 and not path.exists()
    assert done.stderr.strip().splitlines()[-1].endswith(
        "HELIXFLOW_FILE_MODE='rw-r-----': expected an octal file mode such as 0640")


def test_large_writes_go_in_pieces_and_land_whole(tmp_path, monkeypatch):
    import io

    import numpy as np

    from hpc import files

    sizes = []  # what reaches the kernel, write by write

    class Recording(io.FileIO):
        def write(self, data):
            sizes.append(len(memoryview(data).cast("B")))
            return super().write(data)

    monkeypatch.setattr(files.io, "FileIO", Recording)
    data = np.random.default_rng(0).integers(0, 256, 3 * files.WRITE_PIECE + 17, dtype=np.uint8)
    with files.atomic_stream(tmp_path / "a.bin") as fh:
        assert fh.write(data) == data.shape[0]
        assert fh.write(b"tail") == 4
    assert (tmp_path / "a.bin").read_bytes() == data.tobytes() + b"tail"
    assert sizes == [files.WRITE_PIECE] * 3 + [17 + 4]  # the small ones buffered together
    sizes.clear()
    files.save_npz_atomic(tmp_path / "b.npz", x=np.arange(100_000), y=np.zeros((3, 7), dtype=np.uint8))
    with np.load(tmp_path / "b.npz") as back:
        assert np.array_equal(back["x"], np.arange(100_000)) and back["y"].shape == (3, 7)
    assert max(sizes) <= files.WRITE_PIECE

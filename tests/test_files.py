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

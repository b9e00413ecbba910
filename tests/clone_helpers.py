"""A copy of the repository as a fresh clone has it, for tests that run commands where a user would."""
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_clone(target: str) -> str:
    """The repository's files as a fresh clone has them (tracked and not ignored: no data/, no .venv)."""
    if shutil.which("git") is None or not os.path.exists(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, copy = os.path.join(REPO, name), os.path.join(target, name)
        if not os.path.lexists(source):
            continue                                    # deleted in the working tree
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), copy)
        else:
            shutil.copy2(source, copy)
    return target

"""README.md and docs/*.md cannot drift from the code: every command a page shows is run here, or,
where it needs what a test does not have (a `<!-- needs: ... -->` line just before its block: real
data, an accelerator, minutes), checked against the real command — the program exists, its
`--helpfull` lists every flag the page gives it, and the gin files it names exist. The imports of
every Python example run, every link points at a file (and heading) of the project, and the README
stays short."""
import ast
import dataclasses
import functools
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from clone_helpers import fresh_clone

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_LIMIT_BYTES = 12 * 1024
NEEDS = re.compile(r"<!--\s*needs:\s*(.+?)\s*-->")
PYTHONS = ("python", "python3", ".venv/bin/python")


@dataclasses.dataclass
class Block:
    page: pathlib.Path
    line: int            # of the opening fence, 1-based
    lang: str
    text: str
    needs: str | None    # why it is checked rather than run

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


@dataclasses.dataclass
class Command:
    block: Block
    program: str         # "geoest.train", "tools/benchmarks/training.py", "make", "tfds build"
    args: list
    target: str = ""     # the make target

    @property
    def flags(self) -> list:
        """Flag names the command gives (`--gin_file=x` -> gin_file, `--noisns` -> noisns)."""
        return [a[2:].split("=")[0] for a in self.args if a.startswith("--") and len(a) > 2]


def blocks(page: pathlib.Path) -> list:
    """The fenced blocks of a page, each with the `needs` note on the line before it (if any)."""
    found, lines, i = [], page.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        note = NEEDS.fullmatch(before.strip())
        found.append(Block(page, i + 1, opening.group(1), "\n".join(lines[i + 1:end]), note and note.group(1)))
        i = end + 1
    return found


def inline_commands(page: pathlib.Path) -> list:
    """Commands shown inline in prose (`python -m geoest.calibrate --model_dir=DIR ...`), outside fences."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [Block(page, text[:m.start()].count("\n") + 1, "bash", m.group(1), "inline, in prose")
            for m in re.finditer(r"`((?:python3?|\.venv/bin/python) [^`<]+)`", text)]   # <command>: a placeholder


def commands(block: Block) -> list:
    """The commands of a shell block: continuation lines joined, comments dropped, split at ; && || |
    (an unquoted `|` between optional `[--a | --b]` flags only continues the command before it)."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        segment = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "|", "&"):
                words = [w.strip("[]") for w in segment if w.strip("[]")]
                segment = []
                while words and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] in ("do", "then")):
                    words.pop(0)                                  # environment settings, loop bodies
                if not words or words[0] in ("done", "fi") or words[0] in ("for", "while", "if"):
                    continue
                if words[0].startswith("--") and found:
                    found[-1].args.extend(words)                   # `[--a=x | --b=y]`
                    continue
                found.append(_command(block, words))
            else:
                segment.append(token)
    return found


def _command(block: Block, words: list) -> Command:
    if words[0] in PYTHONS and len(words) > 2 and words[1] == "-m":
        return Command(block, words[2], words[3:])
    if words[0] in PYTHONS and len(words) > 1 and words[1].endswith(".py"):
        return Command(block, words[1], words[2:])
    if words[0] == "make" and len(words) == 2:
        return Command(block, "make", [], target=words[1])
    if words[:2] == ["tfds", "build"]:
        return Command(block, "tfds build", words[2:])
    pytest.fail(f"{block.where()}: {' '.join(words)!r} is no command this test knows how to run or check")


def _all(kind):
    shown = [b for page in PAGES for b in blocks(page) + inline_commands(page) if b.lang in ("bash", "sh")]
    if kind == "blocks":
        return shown
    return [c for b in shown for c in commands(b)]


def _checked_programs() -> list:
    return sorted({c.program for c in _all("commands") if c.block.needs and c.program != "make"})


def test_every_page_is_linked_from_the_readme_and_shows_its_commands_as_bash():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README does not link docs/{page.name}"
    for page in PAGES:   # commands only in fenced ```bash blocks (indented blocks would escape this test)
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"(?m)^(?: {4}|\t)(?:python|make |\.venv)", re.sub(r"(?ms)^```.*?^```", "", text)), page
    assert any(c.program == "geoest.train" and not c.block.needs for c in _all("commands")), "no runnable smoke run"


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_bytes()) <= README_LIMIT_BYTES


def test_every_make_target_shown_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for command in (c for c in _all("commands") if c.program == "make"):
        assert re.search(rf"(?m)^{re.escape(command.target)}:", makefile), command.block.where()


def _assert_help(done, argv):
    """A help run succeeded: absl prints the usage and exits with status 1 (argparse 0), no traceback."""
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr and "--" in done.stdout, (
        f"{' '.join(map(str, argv))}: {done.stderr[-2000:]}")


@functools.lru_cache(maxsize=None)
def _known_flags(program: str) -> frozenset:
    """The flags a program takes, from its own help (absl --helpfull; tfds' argparse --help)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if program == "tfds build":   # the command's own parser (the `tfds` entry point also imports apache-beam)
        argv = [sys.executable, "-c", "import simple_parsing\nfrom tensorflow_datasets.scripts.cli import build\n"
                "simple_parsing.parse(build.Args, args=['--help'])"]
    elif program.endswith(".py"):
        assert (REPO / program).is_file(), program
        argv = [sys.executable, str(REPO / program), "--helpfull"]
    else:
        module = REPO.joinpath(*program.split("."))
        assert program.startswith("geoest.") and (module.with_suffix(".py").is_file()
                                                  or (module / "__main__.py").is_file()), program
        argv = [sys.executable, "-m", program, "--helpfull"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    _assert_help(done, argv)
    if program == "tfds build":
        return frozenset(re.findall(r"--([\w-]+)", done.stdout))
    names = {"help", "helpfull", "helpshort"}
    for match in re.finditer(r"(?m)^\s+--(\[no\])?([\w-]+)", done.stdout):
        names.add(match.group(2))
        if match.group(1):
            names.add("no" + match.group(2))
    return frozenset(names)


@pytest.mark.parametrize("program", _checked_programs())
def test_commands_that_need_data_give_real_flags_and_gin_files(program):
    known = _known_flags(program)
    for command in (c for c in _all("commands") if c.program == program):
        unknown = [f for f in command.flags if f not in known]
        assert not unknown, f"{command.block.where()}: {program} takes no {unknown}"
        for arg in command.args:
            if arg.startswith("--gin_file=") and "$" not in arg:
                name = arg.split("=", 1)[1]
                assert (REPO / name).is_file() or (REPO / "gin" / name).is_file(), f"{command.block.where()}: {name}"


def test_every_runnable_command_runs_as_shown_in_a_fresh_clone(tmp_path):
    """The commands with no `needs` note, as printed (only /tmp/ moved into the test's folder), in a
    copy of the repository with nothing beside it (no ../shared)."""
    runnable = [c for c in _all("commands") if not c.block.needs]
    assert runnable
    clone = fresh_clone(str(tmp_path / "clone"))
    for command in runnable:
        assert command.program != "make", f"{command.block.where()}: make needs a `needs` note"
        args = [a.replace("/tmp/", f"{tmp_path}/") for a in command.args]
        argv = ([sys.executable, command.program] if command.program.endswith(".py")
                else [sys.executable, "-m", command.program]) + args
        done = subprocess.run(argv, cwd=clone, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": clone})
        if "--help" in args or "--helpfull" in args:
            _assert_help(done, argv)
            continue
        assert done.returncode == 0, f"{command.block.where()}: {' '.join(argv)}\n{done.stderr[-3000:]}"
        if command.program == "geoest.train":
            model_dir = pathlib.Path(next(a.split("=", 1)[1] for a in args if a.startswith("--model_dir=")))
            assert (model_dir / "best.keras").is_file()
            if "--gin_file=smoke.gin" in args:
                assert sorted(os.listdir(model_dir / "partitionings")) == [
                    "smoke_coarse.csv", "smoke_fine.csv", "smoke_middle.csv"]


def test_the_imports_of_every_python_example_run():
    examples = [b for page in PAGES for b in blocks(page) if b.lang == "python"]
    assert examples
    for block in examples:
        tree = ast.parse(block.text, block.where())
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert imports, block.where()
        exec(compile(ast.Module(body=imports, type_ignores=[]), block.where(), "exec"), {})


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_stay_in_the_project_and_find_their_heading():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text, f"{page.name} names a folder outside the project"
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.is_relative_to(REPO) and linked.exists(), f"{page.name}: {target}"
            if anchor:
                headings = re.findall(r"(?m)^#+ (.+)$", linked.read_text(encoding="utf-8"))
                assert anchor in {_slug(h) for h in headings}, f"{page.name}: {target}"

"""What can be checked of the image without a container engine.

The Dockerfile is parsed (continuations, ARG defaults, JSON-form ENTRYPOINT); its build context
is computed from ``.dockerignore`` the way the engine does; and the wheel is built from exactly
that context with the builder stage's own ``pip wheel`` command, so a file the image would miss
or a name/version that drifts from pyproject fails here.
"""

from __future__ import annotations

import email.parser
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from milvus_backup_operator.api import Kind
from milvus_backup_operator.executors import WorkItem
from milvus_backup_operator.executors.job import JobExecutor

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NONROOT = 65532


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each with its (KEYWORD, arguments) in order."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            flags = [w for w in words if w.startswith("--")]
            assert not flags, f"FROM with flags: {line}"
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before FROM: {line}"
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


ARGS, STAGES = parse_dockerfile(DOCKERFILE.read_text())
FINAL = STAGES[-1]


# ------------------------------------------------------------------- .dockerignore


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _pattern(line.lstrip("!").strip("/"))))
    return rules


def in_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the engine sends ``relative`` (a file) in the build context.

    As with Docker, the last matching rule wins, and a rule matching a folder matches what
    is inside it.
    """
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            excluded = not negate
    return not excluded


def context_files() -> list[str]:
    rules = dockerignore()
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".git/", ".venv/")) or not path.is_file():
            continue  # (both are excluded too; skipping them keeps the walk short)
        if in_context(relative, rules):
            files.append(relative)
    return sorted(files)


# ------------------------------------------------------------------- the tests


def test_base_image_is_pinned_python_311_slim_bookworm() -> None:
    pinned = r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}"
    assert re.fullmatch(pinned, ARGS["PYTHON_IMAGE"]), ARGS
    stage_names = {s.name for s in STAGES if s.name}
    for stage in STAGES:
        base = resolve(stage.base, ARGS)
        assert base == ARGS["PYTHON_IMAGE"] or base in stage_names, stage.base


def test_multi_stage_the_final_stage_installs_only_the_builders_wheel() -> None:
    assert len(STAGES) == 2 and STAGES[0].name == "builder"
    builder_runs = " ".join(STAGES[0].all("RUN"))
    assert "pip wheel --no-deps --wheel-dir /dist ." in builder_runs
    assert not FINAL.all("COPY") and not FINAL.all("ADD"), "the final stage copies no sources"
    (install,) = FINAL.all("RUN")
    assert "--mount=type=bind,from=builder,source=/dist,target=/dist" in install
    assert re.search(r"bin/pip\" install /dist/[\w*.-]+\.whl", install), install
    assert 'pip" uninstall --yes pip' in install


def test_runs_as_a_numeric_non_root_user_and_writes_only_to_tmp() -> None:
    user = FINAL.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) == NONROOT, user  # kubelet's runAsNonRoot needs a number
    assert gid.isdigit() and int(gid) != 0, user
    env = env_of(FINAL)
    assert env["HOME"] == "/tmp" and env["TMPDIR"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # a read-only root filesystem: no .pyc writes
    assert FINAL.all("WORKDIR")[-1] == "/tmp"


def test_entrypoint_is_the_console_script_on_path_that_jobs_run() -> None:
    entrypoint = json.loads(FINAL.all("ENTRYPOINT")[-1])
    scripts = PYPROJECT["project"]["scripts"]
    assert entrypoint == ["milvus-backup-operator"] and entrypoint[0] in scripts
    env = env_of(FINAL)
    assert env["PATH"].split(":")[0] == f"{env['VIRTUAL_ENV']}/bin"
    # the Jobs the operator creates run the same binary by name
    owner = {"metadata": {"name": "x", "uid": "u"}, "kind": Kind.BACKUP.kind}
    job = JobExecutor(image="img").manifest(WorkItem(Kind.BACKUP, "ns", "x", owner, ()))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][0] == entrypoint[0]


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    rules = dockerignore()
    copied = []
    for stage in STAGES:
        for args in stage.all("COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            assert "--from" not in args
            copied += words[:-1]
    assert copied
    for source in copied:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        shipped = [f for f in files if in_context(f.relative_to(ROOT).as_posix(), rules)]
        assert shipped, f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_sends_the_package_and_nothing_else() -> None:
    files = context_files()
    assert {"pyproject.toml", "README.md", "operator/milvus_backup_operator/cli.py"} <= set(files)
    outside = [f for f in files if f not in {"pyproject.toml", "README.md"}]
    assert all(f.startswith("operator/") for f in outside), outside
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    rules = dockerignore()
    for kept_out in (
        ".venv/bin/python", ".git/HEAD", "tests/conftest.py", "testbed/stack/rgw.py",
        "helm/x/Chart.yaml",
    ):  # fmt: skip
        assert not in_context(kept_out, rules), kept_out


def _wheel_command(context: Path, dist: Path) -> list[str]:
    """The builder's ``pip wheel`` (offline when this venv has the build backend already)."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist)]
    try:
        import setuptools

        requirement = PYPROJECT["build-system"]["requires"][0]  # "setuptools>=77"
        minimum = int(requirement.split(">=")[1].split(".")[0])
        if int(setuptools.__version__.split(".")[0]) >= minimum:
            command.append("--no-build-isolation")
    except ImportError:
        pass
    return [*command, str(context)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the build context exactly as the builder stage sees it."""
    tmp = tmp_path_factory.mktemp("image")
    context, dist = tmp / "context", tmp / "dist"
    for relative in context_files():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    done = subprocess.run(
        _wheel_command(context, dist), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = dist.glob("*.whl")
    return built


def test_the_installed_wheel_is_pyprojects_name_and_version(wheel: Path) -> None:
    (install,) = FINAL.all("RUN")
    pattern = re.search(r"/dist/([\w*.-]+\.whl)", install)
    assert pattern and fnmatch.fnmatch(wheel.name, pattern.group(1)), (wheel.name, install)
    project = PYPROJECT["project"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_path = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(meta_path).decode())
        entry_points = archive.read(meta_path.replace("METADATA", "entry_points.txt")).decode()
    assert metadata["Name"] == project["name"] and metadata["Version"] == project["version"]
    assert wheel.name.startswith(f"{project['name'].replace('-', '_')}-{project['version']}-")
    for script, target in project["scripts"].items():
        assert f"{script} = {target}" in entry_points, entry_points
    # every module of the package is in the wheel: nothing the Dockerfile left behind
    package = ROOT / "operator"
    modules = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules and modules <= set(names), sorted(modules - set(names))
    assert not [n for n in names if n.startswith(("tests/", "testbed/"))]


def test_the_console_script_target_exists() -> None:
    import importlib

    for target in PYPROJECT["project"]["scripts"].values():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), target

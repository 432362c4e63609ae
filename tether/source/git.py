"""Running the git CLI: a safe environment, a deadline, and failures with credentials masked.

Every git process ``tether.source`` starts goes through ``Git.run`` (or ``Git.start`` for the
streaming ``cat-file --batch``). The environment never lets git prompt (no terminal, no askpass,
ssh in batch mode), drops variables that would point git at another repository, lets git speak
only the remote's own protocol (``GIT_ALLOW_PROTOCOL``), and hands http(s) credentials to git
through a credential helper scoped to the remote's scheme, host and port: the secret travels in
an environment variable, never in a URL, on a command line or in a config file on disk. Under
``FetchRules.tenant()`` the machine's git configuration, credential helpers, ssh configuration,
keys and agent are out of reach too. Each process runs in its own process group, killed whole
when the fetch's deadline passes.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tether.errors import SourceError
from tether.source.credentials import SshKey
from tether.source.rules import FetchRules
from tether.source.urls import Remote

SSH_COMMAND = "ssh -o BatchMode=yes -o ConnectTimeout=10"
# For a tenant's source: no ssh config, agent or key of the machine's (IdentityFile=/dev/null
# stands for "none": ssh adds its default keys only when no identity file is named).
TENANT_SSH_COMMAND = (
    f"{SSH_COMMAND} -F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none "
    "-o IdentityFile=/dev/null"
)

# Variables that make git operate on some other repository than the one we name.
_REPOSITORY_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE",
    "GIT_REPLACE_REF_BASE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_QUARANTINE_PATH",
)

# The helper answers only "get", with the credentials the URL carried.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; '
    'printf "username=%s\\npassword=%s\\n" "$TETHER_GIT_USERNAME" "$TETHER_GIT_PASSWORD"; }; f'
)

_NOISE = ("hint:", "remote:", "From ", " ", "\t", "warning: redirecting")
_MAX_REASON = 400
_GRACE_SECONDS = 5.0


class Deadline:
    """The time left for one ``fetch``: every git process and lock wait shares it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class GitError(Exception):
    """A git command failed or ran out of time; ``reason`` is git's own words, masked."""

    def __init__(self, reason: str, *, remote: bool, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remote = remote
        self.timed_out = timed_out


@dataclass(frozen=True)
class Git:
    """Runs git for one remote within one deadline."""

    remote: Remote
    deadline: Deadline
    rules: FetchRules = field(default_factory=FetchRules)
    ssh_command: str = ""  # replaces the default one (an ssh key of the source's: ssh_identity)

    def run(
        self,
        *args: str,
        git_dir: Path | None = None,
        stdin: bytes | None = None,
        network: bool = False,
        config: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> bytes:
        """Run ``git args`` and return its stdout; raise ``GitError`` when it fails.

        ``config`` holds extra ``key=value`` settings (given as ``-c``, so they override the
        user's), ``env`` extra environment variables, both for this one command.
        """
        proc = self.start(*args, git_dir=git_dir, stdin=stdin is not None, config=config, env=env)
        try:
            out, err = proc.communicate(stdin, timeout=max(self.deadline.remaining(), 0.001))
        except subprocess.TimeoutExpired:
            kill(proc)
            raise GitError(
                f"git {args[0]} did not finish within {self.deadline.seconds:g}s",
                remote=network,
                timed_out=True,
            ) from None
        if proc.returncode != 0:
            raise GitError(self.reason(err), remote=network)
        return out

    def start(
        self,
        *args: str,
        git_dir: Path | None = None,
        stdin: bool = True,
        config: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``git args`` with pipes for streaming commands; the caller must wait on it."""
        command = ["git", *self._config(), *(["--git-dir", str(git_dir)] if git_dir else [])]
        command += [option for setting in config for option in ("-c", setting)]
        try:
            return subprocess.Popen(
                [*command, *args],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=git_dir or "/",
                env={**self._environment(), **(env or {})},
                start_new_session=True,
            )
        except FileNotFoundError:
            raise SourceError(
                f"cannot fetch {self.remote.display}: the git executable was not found; "
                "install git and make sure it is on PATH"
            ) from None

    def reason(self, stderr: bytes) -> str:
        """git's one-line account of a failure, credentials masked."""
        return self.remote.scrub(summarise(stderr.decode(errors="replace")))

    def _config(self) -> list[str]:
        config = ["-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false"]
        if self.remote.local:
            config += ["-c", "protocol.file.allow=always"]
        if self.remote.username is not None or not self.rules.machine_config:
            config += ["-c", "credential.helper="]  # no helper configured on the machine
        if self.remote.username is not None:
            helper_key = f"credential.{self.remote.host}.helper"
            config += ["-c", f"{helper_key}={_CREDENTIAL_HELPER}"]
        return config

    def _environment(self) -> dict[str, str]:
        env = isolated_environment()
        env.update(GIT_ASKPASS="true", SSH_ASKPASS_REQUIRE="never", GIT_NO_REPLACE_OBJECTS="1")
        env["GIT_ALLOW_PROTOCOL"] = self.rules.protocol(self.remote)
        if not self.rules.machine_config:
            for name in ("GIT_SSH", "SSH_AUTH_SOCK", "GIT_CONFIG_SYSTEM"):
                env.pop(name, None)
            env.update(
                GIT_CONFIG_NOSYSTEM="1",
                GIT_CONFIG_GLOBAL=os.devnull,
                GIT_SSH_COMMAND=TENANT_SSH_COMMAND,
            )
        elif not env.get("GIT_SSH_COMMAND") and not env.get("GIT_SSH"):
            env["GIT_SSH_COMMAND"] = SSH_COMMAND
        if self.ssh_command:
            env.pop("GIT_SSH", None)
            env["GIT_SSH_COMMAND"] = self.ssh_command
        if self.remote.username is not None:
            env["TETHER_GIT_USERNAME"] = self.remote.username
            env["TETHER_GIT_PASSWORD"] = self.remote.password or ""
        return env


@contextlib.contextmanager
def ssh_identity(key: SshKey | None, rules: FetchRules) -> Iterator[str]:
    """The ssh command that uses ``key`` (``""`` without one): the key, and its known hosts, are
    written to a private temporary directory that lives as long as the block."""
    if key is None:
        yield ""
        return
    directory = Path(tempfile.mkdtemp(prefix="tether-ssh-"))  # mode 0700
    try:
        identity = _private_file(directory / "identity", key.private_key)
        base = SSH_COMMAND if rules.machine_config else TENANT_SSH_COMMAND
        command = f"{base} -i {shlex.quote(str(identity))}"
        if key.known_hosts:
            hosts = _private_file(directory / "known_hosts", key.known_hosts)
            command += f" -o UserKnownHostsFile={shlex.quote(str(hosts))}"
            command += " -o StrictHostKeyChecking=yes"
        yield command
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def isolated_environment() -> dict[str, str]:
    """The process environment for git: without variables that would point it at another
    repository, never prompting, with messages in the C locale (they are parsed)."""
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANGUAGE="C")
    return env


def summarise(stderr: str) -> str:
    """The lines of git's stderr that explain a failure, joined on one line.

    Keeps what comes before (and including) the first ``fatal:``, drops hints and progress, and
    strips the ``fatal:``/``error:`` prefixes: ``ssh: connect to host … refused; Could not read
    from remote repository.``
    """
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    fatal = next((i for i, line in enumerate(lines) if line.startswith("fatal:")), len(lines) - 1)
    kept = [line for line in lines[: fatal + 1] if not line.startswith(_NOISE)]
    cleaned = [_strip_prefix(line).rstrip(".") for line in kept[-3:]]
    text = "; ".join(cleaned) or "git gave no reason"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _strip_prefix(line: str) -> str:
    for prefix in ("fatal: ", "error: "):
        if line.startswith(prefix):
            return line[len(prefix) :]
    return line


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Close a git process's input and reap it; kill it if it does not exit promptly."""
    try:
        proc.communicate(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill a git process and everything it started (ssh, remote helpers), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()

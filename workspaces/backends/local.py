"""The ``local`` backend: each workspace's agent is a child process (the embedded default).

Like JupyterHub's LocalProcessSpawner. Every workspace gets a directory
``MOLECULE_LOCAL_ROOT/<workspace id>/``, the console's own (mode 0711: the agent passes through,
nothing in it is listed or written by the agent), holding ``console.log`` (the unified boot log),
``instance.json`` (what is running, for the orphan sweep), ``agent.py`` (the built-in agent's
program, copied there so it is readable wherever the checkout lives) and the agent's own
directories: ``home/`` (HOME), ``tmp/`` (TMPDIR), ``configs/`` (the agent contract's configs
directory, docs/agent-contract.md) and ``workspace/`` (its /workspace, unless the workspace names
its own ``workspace_dir``).

**The agent contract.** Before every start ``configs/`` receives the template's files,
``.auth_token`` (the new instance's token) and ``config.yaml`` (with ``a2a.port``, the loopback
port the agent is given), each file 0600 and the agent's, and the agent's environment gets
``WORKSPACE_ID``, ``PLATFORM_URL``, ``CONFIGS_DIR`` and ``WORKSPACE_CONFIG_PATH``. The directory
is the agent's own and outlives restarts (a runtime keeps markers there), so it may hold
whatever the last agent left, symbolic links included: every write goes through directory file
descriptors without following a link, and a link or file where a delivered folder or file goes
is removed first. What runs is the runtime's command (``spec.command``): ``("builtin",)`` is the
console's agent, run by an isolated interpreter; any other argv runs as given (found on PATH), as
the agent's user, in the workspace directory.

**Who the agent runs as.** When the console runs as root, every agent runs as a user of its own:
a uid (and a gid of the same number, no supplementary groups) in ``MOLECULE_LOCAL_UID_BASE`` …
``+ MOLECULE_LOCAL_UID_COUNT``, picked from a hash of the workspace id (the next free one when
another workspace holds it) and kept for good by the ownership of its ``home/``. No /etc/passwd
entry is needed. Its directories are handed to that uid with mode 0700, so no agent reads
another's files nor the console's. A ``workspace_dir`` outside the root is handed over only when
the backend created it; an operator's existing directory keeps its owner (the boot log names the
uid to ``chown`` it to), and on delete a directory the agent owned goes back to the console's
user. When the console is not root it cannot switch users: agents then run as the console's user.

**What the agent is started with.** An environment built from nothing: the workspace's
variables (checked again here: ``workspaces.envnames``), then the backend's own (PATH, LANG,
HOME, TMPDIR, ...), which win. The interpreter runs isolated (``python -I``): no ``PYTHON*``
variable, user site or current directory steers it. The working directory is checked from
outside once the process runs (/proc/<pid>/cwd), so a directory swapped for a symbolic link
between the check and the start is caught.

The agent runs in its own process group so stop takes everything it started with it. Tier limits
are applied from outside, by the kernel, right after the process starts: the address-space
rlimit for memory, CPU affinity for the CPU share, a file-descriptor cap. What a process cannot be
given (a read-only root filesystem, a separate PID or network namespace) is declared divergent in
the parity matrix, not pretended.

The instance state keeps the pid and the process's start time from /proc, so a console restarted
in between still recognises its processes and never signals a recycled pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from stat import S_IMODE, S_ISDIR, S_IXOTH
from typing import ClassVar

from django.conf import settings

from workspaces.backends import configs
from workspaces.backends.base import (
    CONTRACT_ROWS,
    LIFECYCLE_ROWS,
    Backend,
    BackendError,
    Declared,
    Instance,
    InstanceSpec,
    at_parity,
    divergent,
    free_loopback_port,
    parity,
)
from workspaces.backends.local_files import LocalFiles
from workspaces.envnames import start_problem
from workspaces.paths import normal_form, workspace_dir_problem
from workspaces.runtimes import BUILTIN

AGENT = Path(__file__).resolve().parent.parent / "agent" / "main.py"
# Run first, as the agent's user, in the agent's process: it lowers its own limits (which needs
# no privilege, where setting another process's needs CAP_SYS_RESOURCE, which a root in a
# container may lack) and pins its CPUs, then becomes the agent (exec: same pid, the command
# found on PATH). Hard limits a process lowered it cannot raise again. argv: the write end of a
# pipe (closed by the exec, so the console reads end-of-file once the agent runs, or the reason
# it could not), nofile, address space (0: none), cpus, command.
TRAMPOLINE = (
    "import os, resource, sys\n"
    "ready, nofile, memory, cpus, *command = sys.argv[1:]\n"
    "ready = int(ready)\n"
    "os.set_inheritable(ready, False)\n"
    "try:\n"
    "    resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), int(nofile)))\n"
    "    if int(memory):\n"
    "        resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))\n"
    "    if cpus:\n"
    "        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(',')})\n"
    "except (OSError, ValueError) as error:\n"
    "    os.write(ready, f'its tier limits could not be applied: {error}'.encode())\n"
    "    os._exit(126)\n"
    "try:\n"
    "    os.execvp(command[0], command)\n"
    "except OSError as error:\n"
    "    os.write(ready, f'cannot run {command[0]}: {error.strerror}'.encode())\n"
    "    os._exit(127)\n"
)
EXEC_WAIT_SECONDS = 10.0
STOP_GRACE_SECONDS = 5.0
NOFILE = 1024
# Where to look for a Python the agents' own users may run when the console's is out of their
# reach (e.g. under /root): the agent needs the standard library only.
SYSTEM_PYTHONS = ("/usr/local/bin/python3", "/usr/bin/python3")
# The interpreter found runnable by the agents' users, once per console process.
_agent_python: dict[str, str] = {}


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a pid, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int, start_ticks: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None or stat[2] != start_ticks:
        return False
    if stat[0] in ("Z", "X"):
        _reap(pid)
        return False
    return True


def _group_members(pgid: int, not_before: int) -> list[int]:
    """Live processes of a process group that started no earlier than its leader did."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat and stat[1] == pgid and stat[2] >= not_before and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _wait_gone(pgid: int, not_before: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        _reap(pgid)
        if not _group_members(pgid, not_before):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _private_dir(path: Path, owner: tuple[int, int] | None) -> None:
    """Make the directory ``path`` the agent's: mode 0700 and, with ``owner``, its uid and gid.

    Its contents are handed over too when the directory was someone else's (started before
    agents had users of their own), walking without following links: only this workspace's
    agent ever wrote there, and it is not running while its next start prepares.
    """
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        found = os.fstat(fd)
        if owner is not None and (found.st_uid, found.st_gid) != owner:
            for folder, folders, files in os.walk(path, followlinks=False):
                for name in folders + files:
                    os.lchown(os.path.join(folder, name), *owner)
            os.fchown(fd, *owner)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _console_dir(path: Path) -> None:
    """A directory of the console's that agents may pass through but not list or write."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        path.chmod(0o711)


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (the console's file, ``mode`` whatever the umask)."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, mode)
        file.write(data)
    os.replace(draft, path)


def _remove_at(parent: int, name: str) -> None:
    """Remove the entry ``name`` of the directory ``parent`` (a link itself, never its target)."""
    if S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _folder_at(parent: int, name: str, owner: tuple[int, int] | None) -> int:
    """A descriptor of the real folder ``name`` in ``parent``, the agent's and 0700.

    Whatever else is there (a symbolic link to somewhere else, a file) is removed first: the
    console decides what a delivered path is, not the agent that ran before.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        fd = -1
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        _remove_at(parent, name)
        fd = -1
    if fd < 0:
        os.mkdir(name, configs.DIR_MODE, dir_fd=parent)
        fd = os.open(name, flags, dir_fd=parent)
    if owner is not None:
        os.fchown(fd, *owner)
    os.fchmod(fd, configs.DIR_MODE)
    return fd


def _file_at(parent: int, name: str, data: bytes, owner: tuple[int, int] | None) -> None:
    """Replace the entry ``name`` of ``parent`` with a new file of ``data`` (0600, the agent's).

    Written under a draft name and renamed over the old entry: never written through a link
    or into a file another name shares.
    """
    draft = f".molecule-draft-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        _remove_at(parent, draft)
    fd = os.open(
        draft,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
        configs.FILE_MODE,
        dir_fd=parent,
    )
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, configs.FILE_MODE)
        if owner is not None:
            os.fchown(fd, *owner)
        file.write(data)
    with contextlib.suppress(FileNotFoundError):
        if S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
            shutil.rmtree(name, dir_fd=parent)
    os.replace(draft, name, src_dir_fd=parent, dst_dir_fd=parent)


def _write_configs(folder: Path, content: dict[str, bytes], owner: tuple[int, int] | None) -> None:
    """Deliver ``content`` (relative path -> bytes, judged already) into the configs folder.

    Files the agent wrote there itself stay; every delivered one is written anew.
    """
    _private_dir(folder, owner)
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for path, data in content.items():
            *parents, name = path.split("/")
            here = os.dup(top)
            try:
                for part in parents:
                    inner = _folder_at(here, part, owner)
                    os.close(here)
                    here = inner
                _file_at(here, name, data, owner)
            finally:
                os.close(here)
    finally:
        os.close(top)


def _blocked_on_the_way(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users cannot pass through."""
    for folder in [*reversed(path.parents), path]:
        if not folder.stat().st_mode & S_IXOTH:
            return folder
    return None


def _uid_range() -> range:
    first = int(settings.MOLECULE_LOCAL_UID_BASE)
    return range(first, first + int(settings.MOLECULE_LOCAL_UID_COUNT))


def switches_users() -> bool:
    """Whether agents run as users of their own: only root can start a process as another."""
    return os.geteuid() == 0


class LocalBackend(LocalFiles, Backend):
    name = "local"
    capabilities: ClassVar[dict[str, Declared]] = {
        **at_parity(*LIFECYCLE_ROWS, *CONTRACT_ROWS),
        # The console posts to the child's loopback port (Backend.send_a2a).
        "a2a": parity(),
        # The workspace's directories, walked without following a link (local_files.py).
        "files": parity(),
        # Written into the configs directory through the same file methods (live).
        "plugins": parity(),
        "redaction": parity(),
        "tier_1": divergent(
            "A process gets no read-only root and no namespaces of its own: memory (RLIMIT_AS) "
            "and one CPU (affinity) are applied and /workspace is withheld. / is not read-only, "
            "only closed to the agent's user: a uid of its own when the console runs as root, "
            "else the console's user, who may write wherever the console may."
        ),
        "tier_2": divergent(
            "Memory by RLIMIT_AS and one CPU by affinity, as the tier asks; but the agent shares "
            "the host's PID and network namespaces. It runs as a uid of its own when the "
            "console runs as root, as the console's user otherwise."
        ),
        "tier_3": divergent(
            "No privileges are handed out: the agent runs as an unprivileged uid of its own "
            "(the console's user when the console is not root), in the host's PID namespace "
            "and on the host's network, since a process has no network of its own."
        ),
        "tier_4": divergent(
            "Host PIDs and network, but no privileges and no engine socket: the agent runs as "
            "an unprivileged uid of its own (the console's user when the console is not root)."
        ),
    }

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or settings.MOLECULE_LOCAL_ROOT)

    # --- helpers --------------------------------------------------------------------------
    def _dir(self, workspace_id: str) -> Path:
        return self.root / workspace_id

    @staticmethod
    def _instance_id(pid: int, start_ticks: int) -> str:
        return f"local:{pid}:{start_ticks}"

    @staticmethod
    def _limits(spec: InstanceSpec) -> list[str]:
        """The trampoline's arguments: file descriptors, address space (0: none), CPUs."""
        tier = spec.tier
        cpus = ""
        if tier.cpus:
            mine = sorted(os.sched_getaffinity(0))
            count = max(1, int(tier.cpus))
            # Spread workspaces over the machine's CPUs rather than piling them onto CPU 0.
            first = zlib.crc32(spec.workspace_id.encode()) % len(mine)
            cpus = ",".join(str(mine[(first + i) % len(mine)]) for i in range(count))
        return [str(NOFILE), str(tier.memory_bytes or 0), cpus]

    @contextlib.contextmanager
    def _uid_lock(self) -> Iterator[None]:
        """Serialises picking uids among every process of this console (web, workers)."""
        fd = os.open(self.root / ".uids.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _agent_ids(self, workspace_id: str, home: Path) -> tuple[int, int]:
        """(uid, gid) of the workspace's agent, claimed by the ownership of its ``home/``.

        The first start picks the uid a hash of the workspace id names, or the next one no
        other workspace under the root holds: two workspaces never share a user.
        """
        uids = _uid_range()
        with contextlib.suppress(FileNotFoundError):
            if (owner := home.lstat().st_uid) in uids:
                return owner, owner
        with self._uid_lock():
            taken = set()
            for other in self.root.iterdir():
                with contextlib.suppress(OSError):
                    if other.name != workspace_id:
                        taken.add((other / "home").lstat().st_uid)
            start = int(hashlib.sha256(workspace_id.encode()).hexdigest(), 16) % len(uids)
            for step in range(len(uids)):
                uid = uids[(start + step) % len(uids)]
                if uid not in taken:
                    _private_dir(home, (uid, uid))  # the claim, made under the lock
                    return uid, uid
        raise BackendError(
            f"Every uid from {uids.start} to {uids.stop - 1} belongs to a workspace under "
            f"{self.root}; raise MOLECULE_LOCAL_UID_COUNT or delete workspaces.",
            permanent=True,
        )

    @staticmethod
    def _python(ids: tuple[int, int] | None) -> str:
        """An interpreter the agent's user can run: the console's own when it can."""
        if ids is None:
            return sys.executable
        if found := _agent_python.get("python"):
            return found
        tried = []
        for candidate in dict.fromkeys((sys.executable, *SYSTEM_PYTHONS)):
            if not os.path.exists(candidate):
                continue
            try:
                probe = subprocess.run(
                    [candidate, "-I", "-c", "import http.server, json, urllib.request"],
                    user=ids[0],
                    group=ids[1],
                    extra_groups=[],
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                )
            except (OSError, subprocess.SubprocessError) as error:
                tried.append(f"{candidate}: {error}")
                continue
            if probe.returncode == 0:
                _agent_python["python"] = candidate
                return candidate
            last = (probe.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
            tried.append(f"{candidate}: exit {probe.returncode} {last}".strip())
        raise BackendError(
            f"No Python that the agents' own users (uid {ids[0]}) may run: "
            f"{'; '.join(tried) or 'none found'}. Install python3 where every user can reach "
            "it (e.g. /usr/bin/python3).",
            permanent=True,
        )

    def _prepare_root(self) -> None:
        _console_dir(self.root)
        if not switches_users():
            return
        if blocked := _blocked_on_the_way(self.root.resolve()):
            raise BackendError(
                f"The agents run as users of their own and cannot pass through {blocked} "
                f"(mode {S_IMODE(blocked.stat().st_mode):04o}) to MOLECULE_LOCAL_ROOT "
                f"({self.root}): let others pass through it (chmod o+x {blocked}) or move "
                "MOLECULE_LOCAL_ROOT.",
                permanent=True,
            )

    @staticmethod
    def _operator_dir(path: Path, ids: tuple[int, int] | None) -> Path:
        """The workspace's own ``workspace_dir`` (judged already), created when missing."""
        existed = os.path.lexists(path)
        if not existed:
            path.mkdir(parents=True, exist_ok=True)
            _private_dir(path, ids)  # the console made it, so it is the agent's
        elif ids is not None:
            owner = path.stat().st_uid
            if owner in _uid_range() and owner != ids[0]:
                raise BackendError(
                    f"The workspace directory {path} belongs to uid {owner}, another "
                    "workspace's agent; give this workspace a directory of its own.",
                    permanent=True,
                )
        return path

    # --- contract -------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> Instance:
        if problem := start_problem(spec.env):
            raise BackendError(f"The agent cannot be started: {problem}.", permanent=True)
        platform_url = configs.checked_platform_url(spec.platform_url)
        operator = ""
        if spec.tier.workspace_volume and spec.workspace_dir:
            # Judged again now, before anything is created: a row may predate the rule.
            if problem := workspace_dir_problem(spec.workspace_dir, exact_spelling=False):
                raise BackendError(
                    f"The workspace directory cannot be used: {problem}.", permanent=True
                )
            operator = normal_form(spec.workspace_dir)
        port = free_loopback_port()
        url = f"http://127.0.0.1:{port}"
        # Judged before anything is written: a hostile template path refuses the whole start.
        content = configs.contents(spec, port=port)
        base = self._dir(spec.workspace_id)
        home, tmp, configs_dir = base / "home", base / "tmp", base / "configs"
        ids: tuple[int, int] | None = None
        try:
            self._prepare_root()
            _console_dir(base)
            if switches_users():
                ids = self._agent_ids(spec.workspace_id, home)
            _private_dir(home, ids)
            _private_dir(tmp, ids)
            _write_configs(configs_dir, content, ids)
            env = {
                # The workspace's variables first, so the backend's own below always win.
                **spec.env,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": str(home),
                "TMPDIR": str(tmp),
            }
            if spec.tier.workspace_volume:
                if operator:
                    workspace = self._operator_dir(Path(operator), ids)
                else:
                    workspace = base / "workspace"
                    _private_dir(workspace, ids)
                env["MOLECULE_WORKSPACE_DIR"] = str(workspace)
                cwd = workspace
            else:
                cwd = tmp  # T1 has no /workspace at all
            # What /proc/<pid>/cwd must say once the agent runs: the real path, computed now.
            expected_cwd = operator or os.path.realpath(cwd)
            env |= {
                # Not the contract: where to listen. A process shares the host's network, so
                # the agent listens on loopback only, never on every address.
                "MOLECULE_AGENT_HOST": "127.0.0.1",
                **configs.contract_env(
                    spec, platform_url=platform_url, configs_dir=str(configs_dir)
                ),
            }
            python = self._python(ids)
            if spec.command == (BUILTIN,):
                agent = base / "agent.py"
                _write_private(agent, AGENT.read_bytes(), 0o644)
                # -I: no PYTHON* variable, user site or working directory steers the interpreter.
                command = [python, "-I", "-u", "-B", str(agent)]
            else:
                command = list(spec.command)
            log_fd = os.open(
                base / "console.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
            )
            os.fchmod(log_fd, 0o600)
            log = os.fdopen(log_fd, "ab")
        except OSError as error:
            raise BackendError(
                f"Cannot prepare the workspace directory {base}: {error.strerror}. "
                "Check that MOLECULE_LOCAL_ROOT is writable.",
                permanent=True,
            ) from error
        who = f"uid {ids[0]}" if ids else f"the console's user (uid {os.geteuid()})"
        ran = shlex.join(command)
        with log:
            log.write(
                f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} molecule: starting agent "
                f"(generation {spec.generation}, {spec.tier.label}, runtime {spec.runtime}) "
                f"on {url} as {who}: {ran}\n".encode()
            )
            if operator and ids and os.stat(operator).st_uid != ids[0]:
                log.write(
                    f"--- molecule: {operator} is not the agent's (uid {ids[0]}); "
                    f"chown -R {ids[0]}:{ids[1]} it if the agent must write there\n".encode()
                )
            log.flush()
            switch = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
            ready, signal_exec = os.pipe()
            try:
                process = subprocess.Popen(
                    [
                        python,
                        "-I",
                        "-c",
                        TRAMPOLINE,
                        str(signal_exec),
                        *self._limits(spec),
                        *command,
                    ],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                    close_fds=True,
                    pass_fds=(signal_exec,),
                    umask=0o077,
                    **switch,
                )
            except OSError as error:
                os.close(ready)
                raise BackendError(f"Cannot start the agent process: {error}") from error
            finally:
                os.close(signal_exec)
        try:
            try:
                self._await_exec(process, ready)
            finally:
                os.close(ready)
            stat_now = _proc_stat(process.pid)
            if stat_now is None:
                raise BackendError("The agent process exited as soon as it started.")
            try:
                where = os.readlink(f"/proc/{process.pid}/cwd")
            except OSError:
                where = ""
            if where != expected_cwd:
                raise BackendError(
                    f"The agent started in {where or 'an unknown directory'}, not in "
                    f"{expected_cwd}: a directory on the way was swapped for a symbolic link.",
                    permanent=True,
                )
        except (OSError, BackendError) as error:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if isinstance(error, BackendError) and error.permanent:
                raise
            raise BackendError(f"Cannot start the agent: {error}") from error
        state = {
            "pid": process.pid,
            "start_ticks": stat_now[2],
            "port": port,
            "dir": str(base),
            "uid": ids[0] if ids else None,
            "workspace_dir": operator,
        }
        instance = Instance(self._instance_id(process.pid, stat_now[2]), url, state, ran=ran)
        _write_private(
            base / "instance.json",
            json.dumps({"instance_id": instance.instance_id, **state}).encode(),
        )
        return instance

    @staticmethod
    def _await_exec(process: subprocess.Popen, ready: int) -> None:
        """Wait until the trampoline has set the limits and become the agent.

        The trampoline holds the write end of ``ready`` open until its exec closes it: an
        end-of-file with nothing written means the command runs; otherwise it wrote why not.
        """
        deadline = time.monotonic() + EXEC_WAIT_SECONDS
        said = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(
                    f"The agent did not start within {EXEC_WAIT_SECONDS:g}s of its process."
                )
            readable, _, _ = select.select([ready], [], [], left)
            if not readable:
                continue
            chunk = os.read(ready, 4096)
            if chunk:
                said += chunk
                continue
            break
        if not said and process.poll() is not None:
            raise BackendError(
                f"The agent exited (code {process.returncode}) as soon as it started; see the "
                "console output."
            )
        if said:
            process.wait(timeout=EXEC_WAIT_SECONDS)
            why = said.decode(errors="replace")
            raise BackendError(
                f"The agent exited (code {process.returncode}) before it started: {why}.",
                # A command that does not exist or may not be run stays so until someone acts.
                permanent=process.returncode == 127,
            )

    def _identify(self, instance: Instance) -> tuple[int, int] | None:
        """(pid, start ticks) from the state, or from the id alone (orphans have no state)."""
        if "pid" in instance.state:
            return instance.state["pid"], instance.state["start_ticks"]
        parts = instance.instance_id.split(":")
        if len(parts) == 3 and parts[0] == "local" and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
        return None

    def stop(self, instance: Instance) -> None:
        identity = self._identify(instance)
        if identity is None:
            return
        pid, ticks = identity
        current = _proc_stat(pid)
        # Linux does not reuse a pid while any member of its group lives, so a pid now held by
        # a process that started at another time means our whole group is gone.
        if current is None or current[2] == ticks:
            self._signal_group(pid, ticks)
        for record in self.root.glob("*/instance.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(record.read_text())["instance_id"] == instance.instance_id:
                    record.unlink()

    @staticmethod
    def _signal_group(pid: int, ticks: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for member in _group_members(pid, ticks):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, sig)
                    if sig == signal.SIGTERM:
                        # A stopped (SIGSTOP) process only acts on SIGTERM once continued.
                        os.kill(member, signal.SIGCONT)
            if _wait_gone(pid, ticks, STOP_GRACE_SECONDS):
                return
        raise BackendError(
            f"The agent's process group {pid} survived SIGKILL; look for it with ps -g {pid}."
        )

    def is_running(self, instance: Instance) -> bool:
        identity = self._identify(instance)
        return identity is not None and _alive(*identity)

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        path = Path(instance.state.get("dir", "")) / "console.log"
        try:
            with path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 256 * 1024))
                lines = log.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def remove_storage(self, instance: Instance) -> None:
        home = instance.state.get("dir")
        if home:
            # An operator-provided workspace_dir is theirs: only our own directory is removed.
            shutil.rmtree(home, ignore_errors=True)
        operator, uid = instance.state.get("workspace_dir"), instance.state.get("uid")
        if operator and uid is not None and switches_users():
            # It outlives the workspace, and the uid may go to another workspace later: a
            # directory the agent owned goes back to the console's user.
            with contextlib.suppress(OSError):
                if os.stat(operator, follow_symlinks=False).st_uid == uid:
                    _private_dir(Path(operator), (os.geteuid(), os.getegid()))

    def has_storage(self, instance: Instance) -> bool | None:
        home = instance.state.get("dir")
        return Path(home).exists() if home else None

    def running_instances(self) -> list[str] | None:
        # The listing holds live processes only: what is_running says of each.
        return self.list_instances()

    def list_instances(self) -> list[str]:
        found = []
        for record in self.root.glob("*/instance.json"):
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if _alive(data["pid"], data["start_ticks"]):
                found.append(data["instance_id"])
        return found

"""An uploaded template directory: a ``.zip`` or ``.tar.gz`` unpacked into memory, never onto disk.

Bounded before anything is trusted: the upload's size, the number of entries, and the bytes
unpacked in all (counted as they are read, so an entry that claims to be small but unpacks to a
gigabyte, a zip bomb, stops at the cap). Entries are confined: no absolute path, no ``..``, no
symlink, hard link, device or FIFO. ``org.yaml`` is looked for at the top of the archive, or in
its one top-level folder (``tar czf acme.tar.gz acme/`` packs the folder itself).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib

from orgs.tree import MemoryTree, TreeError, join

MAX_ARCHIVE = 50 * 1024 * 1024
MAX_UNPACKED = 64 * 1024 * 1024
MAX_ENTRIES = 10_000
ROOT_FILE = "org.yaml"


class ArchiveError(ValueError):
    """The upload cannot be unpacked; the message is a whole sentence."""


def is_archive(data: bytes) -> bool:
    return data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b"))


def _name(raw: str) -> str:
    try:
        name = join("", raw.rstrip("/"))
    except TreeError as error:
        raise ArchiveError(f"The archive entry {raw[:120]!r} is refused: {error}.") from None
    return name


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_UNPACKED
        self.entries = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise ArchiveError(f"The archive has more than {MAX_ENTRIES} entries.")

    def take(self, stream: io.BufferedIOBase | object, name: str) -> bytes:
        data = stream.read(self.left + 1)  # type: ignore[attr-defined]
        if len(data) > self.left:
            raise ArchiveError(
                f"The archive unpacks to more than {MAX_UNPACKED} bytes (at {name[:120]})."
            )
        self.left -= len(data)
        return data


def _unzip(data: bytes, budget: _Budget) -> tuple[dict[str, bytes], set[str]]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                budget.entry()
                name = _name(info.filename)
                mode = info.external_attr >> 16
                kind = mode & 0o170000
                if info.is_dir():
                    dirs.add(name)
                    continue
                if kind not in (0, 0o100000):  # neither unset (DOS) nor a regular file
                    raise ArchiveError(
                        f"The archive entry {info.filename[:120]!r} is not a regular file "
                        "(symlinks and devices are refused)."
                    )
                if name in files:
                    raise ArchiveError(f"The archive holds {info.filename[:120]!r} twice.")
                with archive.open(info) as stream:
                    files[name] = budget.take(stream, info.filename)
    except ArchiveError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        zlib.error,
        ValueError,
        OSError,
    ) as error:
        message = f"The upload is not a zip archive this console can read ({error})."
        raise ArchiveError(message) from None
    except RuntimeError as error:  # an encrypted entry
        raise ArchiveError(f"The zip archive cannot be read: {error}.") from None
    return files, dirs


def _untar(data: bytes, budget: _Budget) -> tuple[dict[str, bytes], set[str]]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    try:
        # A stream ("r|gz"): entries are read in order, nothing seeks back or is cached.
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                budget.entry()
                name = _name(member.name)
                if member.isdir():
                    dirs.add(name)
                    continue
                if not member.isreg():
                    raise ArchiveError(
                        f"The archive entry {member.name[:120]!r} is not a regular file "
                        "(symlinks, hard links and devices are refused)."
                    )
                if member.size > budget.left:
                    raise ArchiveError(
                        f"The archive unpacks to more than {MAX_UNPACKED} bytes "
                        f"(at {member.name[:120]})."
                    )
                if name in files:
                    raise ArchiveError(f"The archive holds {member.name[:120]!r} twice.")
                stream = archive.extractfile(member)
                files[name] = budget.take(stream, member.name) if stream else b""
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as error:
        message = f"The upload is not a .tar.gz this console can read ({error})."
        raise ArchiveError(message) from None
    return files, dirs


def unpack(data: bytes, *, label: str = "") -> MemoryTree:
    """The template inside ``data`` (a zip or a gzipped tar); ``ArchiveError`` saying why not."""
    if len(data) > MAX_ARCHIVE:
        raise ArchiveError(f"The archive is larger than {MAX_ARCHIVE} bytes.")
    budget = _Budget()
    if data.startswith(b"\x1f\x8b"):
        files, dirs = _untar(data, budget)
    elif data.startswith(b"PK"):
        files, dirs = _unzip(data, budget)
    else:
        raise ArchiveError("The upload is neither a .zip nor a .tar.gz archive.")
    clash = set(files) & dirs
    if clash:
        raise ArchiveError(f"The archive holds {sorted(clash)[0]!r} as a file and a folder.")
    if ROOT_FILE not in files:
        tops = {name.partition("/")[0] for name in [*files, *dirs] if name}
        top = tops.pop() if len(tops) == 1 else None
        if top is None or f"{top}/{ROOT_FILE}" not in files:
            raise ArchiveError(
                f"The archive has no {ROOT_FILE} at its top or in its one top-level folder."
            )
        prefix = f"{top}/"
        files = {name[len(prefix) :]: body for name, body in files.items()}
        dirs = {name[len(prefix) :] for name in dirs if name.startswith(prefix)}
    return MemoryTree(files, label=label, dirs=dirs)

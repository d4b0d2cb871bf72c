"""What may name a variable that a tenant puts into an agent's environment (a workspace secret).

Pure: the vault's name rule (``vault.key_problem``, asked by every door a secret comes in by) is
built on it, and the backends ask it again at the moment they start an agent, so a row written
before the rule, or a spec built some other way, still cannot steer how the agent starts.

The rule is a *shape*, not a list of bad names: no list of dangerous variables is ever complete
(issue 9 went through ``PYTHONWARNINGS`` and ``BROWSER``, neither on the old list). What makes
the agent's start safe is structural: a clean environment, an isolated interpreter (``python
-I``: every ``PYTHON*`` variable, the user site and the current directory are ignored) and, on
the local backend, a uid of its own. The one thing neither an interpreter flag nor a uid can
neutralise is the dynamic loader, which reads its variables before any program runs; those,
listed below, are refused by name.
"""

from __future__ import annotations

import re

MAX_LENGTH = 128
# Upper-case letters, digits and _, starting with a letter: what the name of a credential or a
# setting handed to an agent looks like (OPENAI_API_KEY, PGPASSWORD). Lower case is where tools
# keep switches of their own (``http_proxy``, which curl reads only in lower case; ``no_proxy``),
# and nothing a tenant needs to hand an agent is spelt that way.
SHAPE = re.compile(rf"^[A-Z][A-Z0-9_]{{0,{MAX_LENGTH - 1}}}$")

# The dynamic loader and the C library read these before main() (glibc's unsecvars.h: the list it
# drops itself for set-uid programs); a value there can load code into the agent, or write files
# as it, whatever the interpreter is told.
LOADER_PREFIXES = ("LD_", "GLIBC_", "MALLOC_")
LOADER_NAMES = frozenset(
    {
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    }
)


def steers_loader(name: str) -> bool:
    """Whether the dynamic loader or the C library acts on ``name`` as the agent starts."""
    return name.startswith(LOADER_PREFIXES) or name in LOADER_NAMES


def start_problem(env: dict[str, str]) -> str | None:
    """Why an agent must not be started with ``env`` (for the backends, at the moment of use).

    Every name must have the shape and none may steer the loader. The backends' own variables
    (``MOLECULE_*``, ``PATH``, ``HOME``…) are set by the backend after this check.
    """
    bad = sorted(name for name in env if not SHAPE.match(name) or steers_loader(name))
    if bad:
        return (
            f"its environment names {', '.join(repr(name) for name in bad)}, which no agent is "
            "started with (upper-case names only, none the dynamic loader reads); delete those "
            "secrets and start it again"
        )
    return None

"""System checks: configuration the console cannot run well without, reported at start.

``manage.py check`` (and ``run``, ``migrate``, the test runner) report them with a sentence,
instead of every create answering an error once the console is up.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from workspaces import runtimes


@register()
def runtimes_file_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        runtimes.catalogue()
    except runtimes.CatalogueError as error:
        return [
            Error(
                f"MOLECULE_RUNTIMES_FILE cannot be used: {error}",
                hint="Fix the file or unset MOLECULE_RUNTIMES_FILE (the built-in catalogue "
                "then runs every Molecule runtime name with the built-in agent).",
                id="workspaces.E001",
            )
        ]
    return []

"""What each verb does to a workspace, in the words every confirmation uses.

The no-JS confirmation page, the JavaScript dialog on the workspace page and the admin's
confirmation all show the same sentence, so an operator is told the same thing (storage and
children go, work in progress is lost) whichever door they use.
"""

from __future__ import annotations


def _others(count: int, what: str) -> str:
    return f"{count} {what}" if count == 1 else f"{count} {what}s"


def consequence(verb: str, *, name: str, live_descendants: int = 0) -> str:
    """One or two sentences: what ``verb`` does to the workspace called ``name``."""
    below = _others(live_descendants, "workspace") if live_descendants else ""
    if verb == "provision":
        return f"A new instance of {name} is started on its backend."
    if verb == "restart":
        return (
            f"The running agent of {name} is stopped and a new instance started; "
            "work in progress is lost."
        )
    if verb == "stop":
        return (
            f"The agent of {name} is stopped; the workspace rests offline and no sweep restarts it."
        )
    if verb == "pause":
        team = f", and so are the {below} below it" if below else ""
        return f"The agent of {name} is stopped and the workspace paused{team}. Resume restarts it."
    if verb == "resume":
        team = " and its paused team members" if below else ""
        return f"{name}{team} start again, on a new instance each."
    if verb == "delete":
        team = f" The {below} below it go too." if below else ""
        return (
            f"The instance of {name} is stopped and its storage removed.{team} "
            "This cannot be undone."
        )
    if verb == "expand":
        return f"{name}'s team members are created from its team spec and provisioned."
    if verb == "collapse":
        return (
            f"The {below or 'workspaces'} below {name} are stopped and removed, with their "
            f"storage; their secrets are kept sealed for the next expand. {name} keeps running."
        )
    raise ValueError(f"unknown verb {verb!r}")

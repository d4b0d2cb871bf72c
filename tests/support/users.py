"""Users for the tests: members of an org, each with a password a test can log in with."""

from __future__ import annotations

from django.contrib.auth.models import User

from orgs.models import Org, OrgMembership


def make_member(org: Org, username: str, role: str) -> User:
    user = User.objects.create_user(username, password="pw-" + username)
    OrgMembership.objects.create(org=org, user=user, role=role)
    return user


def password_of(user: User) -> str:
    """The password every user of the tests has ("pw-" + username; the superuser's too)."""
    return f"pw-{user.get_username()}"

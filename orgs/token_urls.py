"""URLs of the API tokens page (orgs/token_views.py)."""

from __future__ import annotations

from django.urls import path

from orgs import token_views

urlpatterns = [
    path("", token_views.token_list, name="tokens"),
    path("new/", token_views.token_mint, name="token-mint"),
    path("<int:token_id>/revoke/", token_views.token_revoke, name="token-revoke"),
]

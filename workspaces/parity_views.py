"""The parity matrix page: rows by backends, declared verdict beside the verified result.

Anyone logged in may look (it holds no org's data); only superusers may start a check, because a
check creates and deletes real workspaces in an org of its own on every backend.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from orgs.access import actor
from workspaces import parity, selectors, tasks
from workspaces.models import ParityRun

STALE_RUN = timedelta(hours=1)


@login_required
def parity_matrix(request: HttpRequest) -> HttpResponse:
    context = selectors.parity_matrix(run_id=request.GET.get("run"))
    context["can_run"] = request.user.is_superuser
    if request.htmx:
        return render(request, "workspaces/parity.html#matrix", context)
    return render(request, "workspaces/parity.html", context)


@login_required
@require_POST
def parity_run(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only superusers can start a parity check.")
    running = ParityRun.objects.filter(
        finished_at__isnull=True, started_at__gte=timezone.now() - STALE_RUN
    ).first()
    if running is not None:
        messages.error(request, f"Parity run {running.pk} is still running; wait for it to end.")
        return redirect(f"{reverse('parity')}?run={running.pk}")
    run = parity.start_run(backends=None, requested_by=actor(request.user))
    transaction.on_commit(lambda: tasks.run_parity_check.delay(run.pk))
    messages.success(request, f"Parity run {run.pk} started; cells fill in as scenarios end.")
    return redirect(f"{reverse('parity')}?run={run.pk}")

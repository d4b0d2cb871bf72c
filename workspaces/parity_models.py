"""Recorded parity-check runs; imported by workspaces/models.py so Django registers them."""

from __future__ import annotations

from django.db import models


class ParityRun(models.Model):
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=200)
    backends = models.JSONField(default=list)
    error = models.TextField(blank=True)

    class Meta:
        app_label = "workspaces"
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"parity run {self.pk}"

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def drift(self) -> models.QuerySet[ParityResult]:
        return self.results.filter(declared="parity", outcome=ParityResult.FAILED)


class ParityResult(models.Model):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    OUTCOMES = [(PASSED, "passed"), (FAILED, "failed"), (SKIPPED, "skipped")]

    run = models.ForeignKey(ParityRun, on_delete=models.CASCADE, related_name="results")
    backend = models.CharField(max_length=20)
    row = models.CharField(max_length=40)
    declared = models.CharField(max_length=20)
    declared_note = models.TextField(blank=True)
    outcome = models.CharField(max_length=10, choices=OUTCOMES)
    detail = models.TextField(blank=True)
    duration_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "workspaces"
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "backend", "row"], name="one_result_per_cell")
        ]

    def __str__(self) -> str:
        return f"{self.backend}/{self.row}: {self.outcome}"

    @property
    def drift(self) -> bool:
        return self.declared == "parity" and self.outcome == self.FAILED

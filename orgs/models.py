from __future__ import annotations

from django.conf import settings
from django.db import models


class Backend(models.TextChoices):
    LOCAL = "local", "Local processes"
    DOCKER = "docker", "Docker Engine"
    CONTROLPLANE = "controlplane", "Control plane (VMs)"


class Org(models.Model):
    class Plan(models.TextChoices):
        FREE = "free"
        TEAM = "team"
        ENTERPRISE = "enterprise"

    class OrgStatus(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        ARCHIVED = "archived"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=20, choices=Plan, default=Plan.FREE)
    # Where this org's *new* workspaces run; existing ones keep the backend recorded on their row.
    backend = models.CharField(max_length=20, choices=Backend, default=Backend.LOCAL)
    status = models.CharField(max_length=20, choices=OrgStatus, default=OrgStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="OrgMembership", related_name="orgs"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class OrgMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        VIEWER = "viewer"

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role})"

    @property
    def can_act(self) -> bool:
        return self.role != self.Role.VIEWER


class Team(models.Model):
    """An org's group led by a lead workspace; its members are the lead's child workspaces."""

    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="teams")
    lead = models.OneToOneField(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="team"
    )
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["org", "name"]

    def __str__(self) -> str:
        return f"{self.org}/{self.name}"

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

# The latest expiry a row may hold: a day inside the calendar Python and every time zone can show.
# PostgreSQL stores later ones (``9999-12-31T23:59:59-01:00`` is year 10000 in UTC), and then no
# list of the row's org can be read (psycopg cannot load it) and the row cannot be revoked.
# The doors refuse more than ten years ahead (orgs/fields.py); this constraint is the floor.
EXPIRY_CEILING = datetime(9999, 12, 30, tzinfo=UTC)


def _readable_expiry(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=models.Q(expires_at__isnull=True) | models.Q(expires_at__lte=EXPIRY_CEILING),
        name=name,
    )


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
    # Environment variables every agent of the org needs (org import's ``required_env``): team
    # expand refuses to start a member without them rather than start it broken.
    required_env = models.JSONField(default=list, blank=True)
    # Tiers that give an agent the host (docker's T3 is privileged with the host's PIDs, T4 holds
    # the engine's socket) are refused for the org's workspaces until an operator (a superuser)
    # trusts the org with them: a tenant's token must never reach the host on its own.
    privileged_tiers = models.BooleanField(
        default=False,
        help_text="Allow tiers that reach the host on this org's backend (docker: T3, T4). "
        "Only for orgs whose agents you trust with root on the host.",
    )
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


class OrgApiToken(models.Model):
    """A bearer token that acts on one org through the JSON API (docs/architecture.md §9).

    Only the sha256 of the token is stored; the plaintext is shown once, when it is minted
    (orgs/api_tokens.py). ``prefix`` (its first 8 characters) is what people recognise it by.
    """

    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Who or what minted it: "user:<name>", "token:<prefix>", "partner:<prefix>",
    # "admin-token", "cli:<login>", so a chain of mints can be followed after an incident.
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "org API token"
        constraints = [_readable_expiry("org_token_expiry_readable")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def status(self) -> str:
        return _key_status(self.revoked_at, self.expires_at)


class PartnerApiKey(models.Model):
    """A partner's key (``mol_pk_live_`` + 32 hex) for org management through the API.

    Scopes say what it may do; ``org`` (optional) binds it to one org. Only the sha256 is stored.
    ``window_started_at`` and ``window_count`` are the per-key rate limiter's counter
    (orgs/partner_keys.py), kept in the database so every web process counts in the same window.
    """

    class Scope(models.TextChoices):
        ORGS_CREATE = "orgs:create"
        ORGS_READ = "orgs:read"
        ORGS_DELETE = "orgs:delete"
        PROVISION_STATUS = "provision:status"
        ADMIN_KEYS = "admin:keys"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    org = models.ForeignKey(
        Org, null=True, blank=True, on_delete=models.PROTECT, related_name="partner_keys"
    )
    rate_limit = models.PositiveIntegerField(default=60, help_text="Requests per minute.")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    window_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "partner API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_limit__gte=1), name="rate_limit_positive"
            ),
            _readable_expiry("partner_key_expiry_readable"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def status(self) -> str:
        return _key_status(self.revoked_at, self.expires_at)


def _key_status(revoked_at: datetime | None, expires_at: datetime | None) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= timezone.now():
        return "expired"
    return "active"

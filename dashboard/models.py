"""What is ours, not Stigg's: the append-only audit log of every write the dashboard makes
to Stigg: budget changes, and promotion grants, extensions and revokes.

Append-only twice over: the model refuses to update or delete a row (``save`` of an
existing row, ``delete``, and the queryset's ``update``/``delete``), and the database
refuses it too, with triggers the migration ``0002_audit_log_append_only`` creates on
SQLite and PostgreSQL, so neither a raw query nor the admin can rewrite history."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """An audit row was about to be changed or deleted."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("the audit log is append-only: rows are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit log is append-only: rows are never deleted")


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        BUDGET_CHANGE = "budget.change", "Budget changed"
        BUDGET_ADD = "budget.add", "Budget added"
        PROMOTION_GRANT = "promotion.grant", "Promotion granted"
        PROMOTION_EXTEND = "promotion.extend", "Promotion extended"
        PROMOTION_REVOKE = "promotion.revoke", "Promotion revoked"
        GRANT_REQUEST = "grant.request", "Grant sent for approval"
        GRANT_APPROVE = "grant.approve", "Grant approved"
        GRANT_REJECT = "grant.reject", "Grant rejected"
        GRANT_EXPIRE = "grant.expire", "Grant request expired"
        BULK_REQUEST = "bulk.request", "Bulk grant sent for approval"
        BULK_APPROVE = "bulk.approve", "Bulk grant approved"
        BULK_REJECT = "bulk.reject", "Bulk grant rejected"
        BULK_EXPIRE = "bulk.expire", "Bulk grant request expired"

    class Outcome(models.TextChoices):
        DONE = "done", "Done"  # Stigg accepted the change
        FAILED = "failed", "Failed"  # Stigg refused it, or did not answer in time

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT: a person who changed something stays on record; deactivate them instead.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_entries")
    username = models.CharField(max_length=150, help_text="as it was when the change was made")
    # Stigg's ids have no documented length: text, so no id Stigg accepted can fail the row.
    customer_id = models.TextField(db_index=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    entity_id = models.TextField(blank=True)
    capability = models.TextField(blank=True, help_text='a feature id, or "$" + a currency id')
    scope = models.JSONField(default=list, blank=True, help_text="scope entity ids; [] = node-wide")
    before = models.JSONField(null=True, blank=True, help_text="null when the budget was added")
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField()
    ticket = models.CharField(max_length=200, blank=True)
    stigg_status = models.PositiveSmallIntegerField(null=True, blank=True,
                                                    help_text="HTTP status of Stigg's answer; empty when none came")
    stigg_answer = models.TextField(blank=True, help_text="what Stigg answered, or why there was no answer")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # The form's one-time token: a second submit of the same form finds this row instead
    # of making another change.
    idempotency_key = models.UUIDField(unique=True)
    # The bulk grant this row belongs to (each grant, revoke and approval step of a batch);
    # empty for a change made on its own.
    batch = models.ForeignKey("BulkBatch", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="audit_entries")

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        # No add/change/delete permissions exist at all: rows come only from the actions.
        default_permissions = ("view",)
        permissions = [("change_budget", "Can change governance budgets"),
                       ("grant_promotion", "Can grant, extend and revoke promotions")]
        # The audit log page pages by keyset in the order (-at, -id): each index gives that order
        # within its filter (migration 0005); unfiltered, the index on ``at`` does.
        indexes = [models.Index(fields=("customer_id", "entity_id", "capability"), name="audit_budget_idx"),
                   models.Index(fields=("customer_id", "at", "id"), name="audit_customer_at_idx"),
                   models.Index(fields=("customer_id", "action", "at", "id"), name="audit_customer_action_idx"),
                   models.Index(fields=("username", "at", "id"), name="audit_user_at_idx"),
                   models.Index(fields=("username", "action", "at", "id"), name="audit_user_action_idx"),
                   models.Index(fields=("action", "at", "id"), name="audit_action_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.customer_id} ({self.outcome})"

    @property
    def done(self) -> bool:
        return self.outcome == self.Outcome.DONE

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("the audit log is append-only: a recorded row is never changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit log is append-only: rows are never deleted")


class GrantRequest(models.Model):
    """A grant the approval policy holds back (rules/approvals.py) until another customer-
    success lead approves it; then it runs exactly as if its requester had submitted it.
    Not append-only: its status moves on. Every step leaves its own audit row."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a lead"
        APPROVING = "approving", "Being granted"  # a lead approved it; the grant is on its way to Stigg
        GRANTED = "granted", "Approved and granted"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired undecided"

    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grant_requests")
    customer_id = models.TextField(db_index=True)
    customer_name = models.TextField(blank=True)
    feature_id = models.TextField()
    feature_name = models.TextField(blank=True)
    grant = models.JSONField(help_text="the Grant (rules/promotions.py), as the codec dumps it")
    reason = models.TextField()
    ticket = models.CharField(max_length=200, blank=True)
    why = models.JSONField(default=list, help_text="why it needs approval, in words")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="grant_decisions")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    last_error = models.TextField(blank=True, help_text="why the last approved attempt was not granted")
    # The request form's one-time token (a second submit finds this request), and the
    # token of the grant an approval sends (a new one after a failed attempt).
    token = models.UUIDField(unique=True)
    grant_token = models.UUIDField(unique=True)

    class Meta:
        ordering = ("-requested_at", "-id")
        default_permissions = ("view",)
        permissions = [("approve_grant", "Can approve or reject grants that need approval")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.feature_id} by {self.requested_by} ({self.status})"

    def expired(self, now: Any) -> bool:
        return self.status == self.Status.PENDING and self.expires_at <= now


class BulkBatch(models.Model):
    """One bulk grant (issue 10): rows chosen on the near-limit view or read from a CSV,
    shown as a dry run, then granted by a Celery job (dashboard/bulk_tasks.py), and maybe
    undone. Not append-only: its status moves on; each grant, revoke and approval step has
    its own audit row pointing here (AuditEntry.batch).

    draft (the dry run) → pending (waiting for a lead: rules/approvals.py) → queued →
    running → finished; or pending → rejected | expired. Undo has its own status."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Dry run"
        PENDING = "pending", "Waiting for a lead"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Granting"
        FINISHED = "finished", "Finished"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired undecided"

    class Source(models.TextChoices):
        NEAR_LIMIT = "near-limit", "Near-limit rows"
        CSV = "csv", "CSV upload"

    class Undo(models.TextChoices):
        NONE = "", "Not undone"
        QUEUED = "queued", "Undo queued"
        RUNNING = "running", "Undoing"
        FINISHED = "finished", "Undone"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bulk_batches")
    source = models.CharField(max_length=12, choices=Source.choices)
    # What was asked, in words ("raise to 5,000 for 1 month"; "orders.csv, 120 rows").
    summary = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="said on the dry run: e.g. rows left out past the size limit")
    reason = models.TextField()
    ticket = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    why = models.JSONField(default=list, blank=True, help_text="why it needs approval, in words")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="when a pending batch lapses")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="bulk_decisions")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undo_status = models.CharField(max_length=10, choices=Undo.choices, default=Undo.NONE, blank=True)
    undo_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="bulk_undos")
    undo_reason = models.TextField(blank=True)
    undo_at = models.DateTimeField(null=True, blank=True)
    undo_finished_at = models.DateTimeField(null=True, blank=True)
    # The dry-run form's one-time token: the same form sent twice makes one batch.
    token = models.UUIDField(unique=True)

    class Meta:
        ordering = ("-created_at", "-id")
        # Anybody signed in may look at a batch; making, confirming and undoing one takes
        # grant_promotion, deciding one approve_grant: no permission of its own.
        default_permissions = ()

    def __str__(self) -> str:
        return f"bulk grant #{self.pk} by {self.created_by} ({self.status})"


class BulkRow(models.Model):
    """One customer and feature of a bulk grant: what the dry run showed, whether it is
    ticked, and what happened when it was granted (and undone). ``token`` is the grant's
    one-time token (actions/writes.py): a job run twice sends each row once."""

    class State(models.TextChoices):
        BAD = "bad", "Cannot be granted"  # the dry run found it wrong; never sent
        PENDING = "pending", "Waiting"
        DONE = "done", "Granted"
        FAILED = "failed", "Not granted"
        SKIPPED = "skipped", "Not ticked"

    class UndoState(models.TextChoices):
        NONE = "", "—"
        PENDING = "pending", "Waiting"
        DONE = "done", "Revoked"
        FAILED = "failed", "Not revoked"
        SKIPPED = "skipped", "Left as it is"

    batch = models.ForeignKey(BulkBatch, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField(help_text="1-based: the CSV line, or the order selected")
    customer_id = models.TextField()
    customer_name = models.TextField(blank=True)
    feature_id = models.TextField()
    feature_name = models.TextField(blank=True)
    grant = models.JSONField(null=True, blank=True, help_text="the Grant (rules/promotions.py); empty for a bad row")
    grant_text = models.TextField(blank=True, help_text="what it grants, in words")
    before = models.TextField(blank=True, help_text="what the customer gets now, in words")
    after = models.TextField(blank=True, help_text="… once granted")
    usage = models.FloatField(null=True, blank=True)
    utilization_before = models.FloatField(null=True, blank=True)
    utilization_after = models.FloatField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True, help_text="[[kind, text], …] of the preview")
    why = models.JSONField(default=list, blank=True, help_text="why this row alone needs approval")
    selected = models.BooleanField(default=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    message = models.TextField(blank=True, help_text="why it is bad, or why it was not granted")
    granted_promotion_id = models.TextField(blank=True, help_text="the promotion Stigg made for this row")
    undo_state = models.CharField(max_length=8, choices=UndoState.choices, default=UndoState.NONE, blank=True)
    undo_message = models.TextField(blank=True)
    token = models.UUIDField(unique=True)
    undo_token = models.UUIDField(unique=True)

    class Meta:
        ordering = ("batch", "position")
        default_permissions = ()
        indexes = [models.Index(fields=("batch", "state"), name="bulkrow_batch_state_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.feature_id} ({self.state})"


class Alert(models.Model):
    """A metered entitlement or a governance budget that crossed a level (rules/alerts.py):
    opened, escalated and closed by the evaluation task (dashboard/alerts/evaluate.py) from
    the read model, acknowledged or snoozed by people on /alerts/.

    At most one open alert per (customer, subject): a conditional unique constraint, so an
    evaluation run twice, or two at once, opens nothing twice. ``state`` is open or closed;
    acknowledged and snoozed are an open alert's ``acknowledged_at`` / ``snoozed_until``.
    ``last_notified_at`` / ``notified_level`` are its immediate notice's claim (one per
    cool-down: dashboard/alerts/notices.py); ``escalated_at`` says when it last got worse
    (digests hold what opened or got worse since the last one: dashboard/alerts/digest.py)."""

    class Kind(models.TextChoices):
        ENTITLEMENT = "entitlement", "Entitlement"
        BUDGET = "budget", "Budget"

    class Level(models.TextChoices):  # mildest first (rules.alerts.LEVELS)
        WARNING = "warning", "Warning"
        RUNOUT = "runout", "Runs out before reset"
        LIMIT = "limit", "Limit reached"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Why(models.TextChoices):
        CLEARED = "cleared", "Fell below the clear level"
        RESET = "reset", "Its window reset"
        GONE = "gone", "No longer there"

    customer_id = models.TextField()
    customer_name = models.TextField(blank=True)
    account_owner = models.TextField(blank=True, help_text="from the customer's metadata, when opened")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # One string per subject: "e|<feature>" or "b|<entity>|<capability>|<scope,…>", each part
    # percent-encoded (dashboard/alerts/subjects.py); the columns below say it for people.
    subject = models.TextField()
    capability = models.TextField(help_text='the feature id, or "$" + a currency id')
    feature_name = models.TextField(blank=True)
    entity_id = models.TextField(blank=True)
    entity_name = models.TextField(blank=True)
    scope = models.JSONField(default=list, blank=True, help_text="scope entity ids; [] = node-wide")
    level = models.CharField(max_length=8, choices=Level.choices)
    worst_level = models.CharField(max_length=8, choices=Level.choices)
    opened_utilization = models.FloatField(null=True)
    opened_usage = models.FloatField(null=True)
    opened_usage_limit = models.FloatField(null=True)
    utilization = models.FloatField(null=True, help_text="latest")
    usage = models.FloatField(null=True, help_text="latest")
    usage_limit = models.FloatField(null=True, help_text="latest")
    ttl = models.JSONField(null=True, blank=True, help_text="latest time to limit, as the read model stores it")
    window_end = models.DateTimeField(null=True, blank=True, help_text="empty: never resets")
    read_at = models.DateTimeField(null=True, blank=True, help_text="when Stigg was read for the latest numbers")
    state = models.CharField(max_length=6, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_why = models.CharField(max_length=8, choices=Why.choices, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    snoozed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notified_level = models.CharField(max_length=8, choices=Level.choices, blank=True)

    class Meta:
        ordering = ("-opened_at", "-id")
        default_permissions = ("view",)
        permissions = [("acknowledge_alert", "Can acknowledge and snooze alerts")]
        constraints = [models.UniqueConstraint(fields=("customer_id", "subject"), condition=models.Q(state="open"),
                                               name="alert_one_open_per_subject")]
        # The list (open alerts newest first) and one customer's alerts; and the count of those
        # needing attention (/alerts/ and its My accounts, the nav's), read from the index
        # alone: at 100,000 customers ~62,000 alerts are open and counting them from the
        # table took 13 ms (with an owner 20), from this index 5 (with an owner 1.7; SQLite).
        indexes = [models.Index(fields=("state", "opened_at", "id"), name="alert_state_opened_idx"),
                   models.Index(fields=("customer_id", "state", "opened_at"), name="alert_customer_idx"),
                   models.Index(fields=("state", "acknowledged_at", "account_owner", "snoozed_until"),
                                name="alert_attention_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.subject} {self.level} ({self.state})"

    def snoozed(self, now: Any) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > now


class Profile(models.Model):
    """What the dashboard knows of one of its users beyond Django's user: whose accounts are
    theirs ("My accounts": ``account_owner`` is matched to the customers' owner metadata,
    settings.ACCOUNT_OWNER_METADATA_KEY) and how they want alerts delivered (a digest, and
    an immediate notice when a limit is reached). Made on first use (``profile_of``);
    edited in the admin (the owner name) and on the user's settings page (delivery)."""

    class Digest(models.TextChoices):
        OFF = "off", "No digest"
        DAILY = "daily", "Once a day"
        WEEKLY = "weekly", "Once a week"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    account_owner = models.CharField(
        max_length=200, blank=True,
        help_text="The account owner name the customers' Stigg metadata gives for this person's accounts "
                  "(exactly as written there); empty: they own no accounts.")
    digest = models.CharField(max_length=6, choices=Digest.choices, default=Digest.OFF)
    last_digest_at = models.DateTimeField(null=True, blank=True,
                                          help_text="when the last digest went out: the next one has what is "
                                                    "new or worse since")
    notice_email = models.EmailField(blank=True, help_text="immediate notice of a limit reached, by email")
    notice_webhook_url = models.URLField(max_length=500, blank=True,
                                         help_text="immediate notice of a limit reached, to a Slack-compatible "
                                                   "incoming webhook")

    class Meta:
        # Edited by the person themselves (delivery) and by superusers in the admin (the
        # owner name): no role needs a permission of its own for it.
        default_permissions = ()

    def __str__(self) -> str:
        return f"profile of {self.user}"


def profile_of(user: Any) -> Profile:
    """The user's profile, made (with the defaults) the first time it is asked for."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


_OWNER_NAME = "_account_owner_name"


def account_owner_of(user: Any) -> str:
    """The user's account owner name as written on their profile ("" when none), read
    without making a profile: a page view writes nothing. Read once per user object — one
    request's (the view and the nav's count both ask)."""
    name = getattr(user, _OWNER_NAME, None)
    if name is None:
        name = Profile.objects.filter(user_id=user.pk).values_list("account_owner", flat=True).first() or ""
        setattr(user, _OWNER_NAME, name)
    return name

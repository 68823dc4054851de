"""The settings page's form: how alerts reach this person (a digest, immediate notices by
email and to a Slack-compatible webhook). Field names kept for scripts: ``digest``,
``notice_email``, ``notice_webhook_url``. The webhook check is the rule's
(rules/delivery.py), used by this form and by the admin's profile form alike."""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from .models import Profile
from .rules.delivery import webhook_url_problem


class WebhookField(forms.URLField):
    """A notice webhook's address: a web address the delivery rules accept."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        problem = webhook_url_problem(value, settings.ALERT_WEBHOOK_ALLOW_PRIVATE) if value else None
        if problem:
            raise forms.ValidationError(problem, code="webhook")
        return value


class DeliveryForm(forms.ModelForm):
    notice_webhook_url = WebhookField(
        max_length=500, required=False, label="Slack-compatible incoming webhook",
        help_text="An incoming-webhook address from Slack (or Mattermost, Rocket.Chat …): "
                  "https://hooks.slack.com/services/…",
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…", "autocomplete": "off",
                                     "spellcheck": "false"}))

    class Meta:
        model = Profile
        fields = ("digest", "notice_email", "notice_webhook_url")
        labels = {"digest": "Email digest", "notice_email": "Email for immediate notices"}
        help_texts = {"notice_email": "Leave empty for no notice by email.", "digest": ""}
        widgets = {"digest": forms.RadioSelect,
                   "notice_email": forms.EmailInput(attrs={"placeholder": "you@example.com", "autocomplete": "email"})}

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.was_off = self.instance.digest == Profile.Digest.OFF

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        wants = cleaned.get("digest") not in (None, Profile.Digest.OFF)
        if wants and not self.user.email and not cleaned.get("notice_email") and "notice_email" not in self.errors:
            self.add_error("digest", "A digest needs an email address, and your account has none: enter one for "
                                     "notices below (the digest goes there too), or ask an administrator to set "
                                     "your account's.")
        return cleaned

    def save(self, commit: bool = True) -> Profile:
        profile = super().save(commit=False)
        if self.was_off and profile.digest != Profile.Digest.OFF:
            # Turned on: the first digest covers the last day or week, not the time it was off.
            profile.last_digest_at = None
        if commit:
            profile.save()
        return profile

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from dashboard.models import profile_of
from dashboard.rules.my_accounts import owner_name


class Command(BaseCommand):
    help = "Create (or reset the password of) a demo login, in exactly the role given."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("password")
        parser.add_argument("--group", action="append", default=[],
                            help='a role made by the migrations, e.g. "Customer success" or "Viewers" (repeatable)')
        parser.add_argument("--staff", action="store_true",
                            help="may sign in to /admin/ (which shows the audit log, read-only)")
        parser.add_argument("--account-owner", default=None,
                            help="the account owner name of their customers (My accounts); \"\" for none; "
                                 "left as it is when not given")

    def handle(self, *args, username: str, password: str, group: list[str], staff: bool,
               account_owner: str | None = None, **opts):
        groups = list(Group.objects.filter(name__in=group))
        missing = sorted(set(group) - {g.name for g in groups})
        if missing:
            raise CommandError(f"no such group: {', '.join(missing)} (run migrate first)")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = staff
        user.is_superuser = False
        user.save()
        user.groups.set(groups)
        owns = ""
        if account_owner is not None:
            profile = profile_of(user)
            profile.account_owner = owner_name(account_owner)
            profile.save(update_fields=["account_owner"])
            owns = f", owns {profile.account_owner}'s accounts" if profile.account_owner else ", owns no accounts"
        roles = ", ".join(g.name for g in groups) or "no group"
        self.stdout.write(f"{'Created' if created else 'Updated'} demo login {username} ({roles}"
                          f"{', staff' if staff else ''}{owns})")

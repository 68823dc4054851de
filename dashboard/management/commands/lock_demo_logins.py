"""python manage.py lock_demo_logins USERNAME:PASSWORD ... — lock each login that still
has its published demo password (its password made unusable), so a database first used
with the emulator carries no known password once it serves real Stigg. A user of the same
name with a password of its own is left alone."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Lock the logins that still have their published demo password."

    def add_arguments(self, parser):
        parser.add_argument("logins", nargs="+", metavar="USERNAME:PASSWORD")

    def handle(self, *args, logins: list[str], **opts):
        for login in logins:
            username, sep, password = login.partition(":")
            if not sep or not username:
                raise CommandError(f"{login!r} is not USERNAME:PASSWORD")
            user = get_user_model().objects.filter(username=username).first()
            if user is None or not user.check_password(password):
                continue
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stdout.write(f"Locked demo login {username}: its demo password no longer signs in")

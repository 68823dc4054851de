from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create (or reset the password of) a demo login, in exactly the role given."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("password")
        parser.add_argument("--group", action="append", default=[],
                            help='a role made by the migrations, e.g. "Customer success" or "Viewers" (repeatable)')
        parser.add_argument("--staff", action="store_true",
                            help="may sign in to /admin/ (which shows the audit log, read-only)")

    def handle(self, *args, username: str, password: str, group: list[str], staff: bool, **opts):
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
        roles = ", ".join(g.name for g in groups) or "no group"
        self.stdout.write(f"{'Created' if created else 'Updated'} demo login {username} ({roles}"
                          f"{', staff' if staff else ''})")

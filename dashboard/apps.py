from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Stigg admin dashboard"

    def ready(self) -> None:
        from .observability import connect_task_logging

        connect_task_logging()  # one log line per task, in the workers (signals fire only there)

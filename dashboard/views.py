from django.http import JsonResponse


def healthz(request):
    # Sync status joins this answer when the Celery sync lands (issue 3).
    return JsonResponse({"status": "ok"})

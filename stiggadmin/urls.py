from django.urls import path

from dashboard import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/stigg", views.stigg_webhook, name="stigg-webhook"),
]

from django.urls import path

from . import views

app_name = "alerting"

urlpatterns = [
    path("act/<str:token>/", views.action_link, name="action-link"),
    path("api/groups/<int:pk>/acknowledge/", views.api_acknowledge, name="api-acknowledge"),
    path("api/groups/<int:pk>/resolve/", views.api_resolve, name="api-resolve"),
]

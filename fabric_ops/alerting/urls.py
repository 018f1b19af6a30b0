from django.urls import path

from . import api, views

app_name = "alerting"

urlpatterns = [
    path("act/<str:token>/", views.action_link, name="action-link"),
    path("api/groups/", api.GroupList.as_view(), name="api-groups"),
    path("api/silences/", api.SilenceList.as_view(), name="api-silences"),
    path("api/silences/<int:pk>/expire/", api.expire_silence, name="api-silence-expire"),
    path("api/groups/<int:pk>/acknowledge/", views.api_acknowledge, name="api-acknowledge"),
    path("api/groups/<int:pk>/resolve/", views.api_resolve, name="api-resolve"),
]

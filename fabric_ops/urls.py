"""Top-level URL map."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("alerting/", include("fabric_ops.alerting.urls")),  # signed ack/resolve links and their API
    path("api/", include("fabric_ops.web.api.urls")),
    path("", include("fabric_ops.web.urls_ui")),  # the HTML pages (fabric_ops/web/views)
]

"""URL map of /api/. Explicit: one line per endpoint family."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import health, health_objects, lab, topology, users, viewsets

router = DefaultRouter()
router.include_root_view = True
router.register("sites", viewsets.SiteViewSet)
router.register("fabrics", viewsets.FabricViewSet)
router.register("pods", viewsets.PodViewSet)
router.register("devices", viewsets.DeviceViewSet)
router.register("interfaces", viewsets.InterfaceViewSet)
router.register("links", viewsets.LinkViewSet)
router.register("transceivers", viewsets.TransceiverViewSet)
router.register("optical-spans", viewsets.OpticalSpanViewSet)
router.register("optical-channels", viewsets.OpticalChannelViewSet)
router.register("gpu-hosts", viewsets.GpuHostViewSet)
router.register("roce-profiles", viewsets.RoceProfileViewSet)
router.register("underlay-profiles", viewsets.UnderlayProfileViewSet)
router.register("intent-assignments", viewsets.IntentAssignmentViewSet)
router.register("push-jobs", viewsets.PushJobViewSet)
router.register("device-jobs", viewsets.DeviceJobViewSet)
router.register("config-backups", viewsets.ConfigBackupViewSet)
router.register("compliance-results", viewsets.ComplianceResultViewSet)
router.register("incidents", health_objects.IncidentViewSet)
router.register("alarms", health_objects.AlarmViewSet)
router.register("remediation-runs", health_objects.RemediationRunViewSet)
router.register("remediation-actions", health_objects.ActionRecordViewSet)
router.register("audit", viewsets.AuditEntryViewSet)
router.register("users", users.UserViewSet)

urlpatterns = [
    path("me/", users.MeView.as_view(), name="api-me"),
    path("health/", health.HealthView.as_view(), name="api-health"),
    path("health/live/", health.LiveView.as_view(), name="api-health-live"),
    path("topology/<slug:fabric>/graph/", topology.FabricGraphView.as_view(), name="api-topology-graph"),
    path("topology/<slug:fabric>/what-if/", topology.WhatIfView.as_view(), name="api-topology-what-if"),
    path("lab/", lab.LabStatusView.as_view(), name="api-lab"),
    path("lab/inject/", lab.LabInjectView.as_view(), name="api-lab-inject"),
    path("lab/clear/", lab.LabClearView.as_view(), name="api-lab-clear"),
    path("", include(router.urls)),
]

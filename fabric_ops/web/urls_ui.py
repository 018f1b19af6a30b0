"""URL map of the HTML pages (included at the site root). Explicit: one line per page or fragment."""

from django.urls import path

from .views import alerting, devices, incidents, jobs, lab, overview, planner, topology

app_name = "web"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("overview/health/", overview.overview_health, name="overview-health"),
    path("overview/top-ports/", overview.overview_top_ports, name="overview-top-ports"),
    path("overview/capacity/", overview.overview_capacity, name="overview-capacity"),
    path("topology/", topology.topology_index, name="topology-index"),
    path("topology/<slug:fabric>/", topology.topology, name="topology"),
    path("topology/<slug:fabric>/graph.json", topology.topology_graph, name="topology-graph"),
    path("topology/<slug:fabric>/state.json", topology.topology_state, name="topology-state"),
    path("devices/<str:hostname>/", devices.device_detail, name="device"),
    path("devices/<str:hostname>/charts.json", devices.interface_charts, name="device-charts"),
    path("devices/<str:hostname>/lifecycle/", devices.device_set_lifecycle, name="device-lifecycle"),
    path("links/<int:pk>/", devices.link_detail, name="link"),
    path("links/<int:pk>/state/", devices.link_set_state, name="link-state"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/new/", jobs.job_create, name="job-create"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job"),
    path("jobs/<int:pk>/progress/", jobs.job_progress, name="job-progress"),
    path("jobs/<int:pk>/approve/", jobs.job_approve, name="job-approve"),
    path("planner/", planner.planner, name="planner"),
    path("lab/", lab.lab, name="lab"),
    path("lab/faults/", lab.lab_faults, name="lab-faults"),
    path("lab/inject/", lab.lab_inject, name="lab-inject"),
    path("lab/clear/", lab.lab_clear, name="lab-clear"),
    path("incidents/", incidents.incident_list, name="incidents"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident"),
    path("incidents/<int:pk>/live/", incidents.incident_live, name="incident-live"),
    path("incidents/<int:pk>/acknowledge/", incidents.incident_acknowledge, name="incident-acknowledge"),
    path("incidents/<int:pk>/resolve/", incidents.incident_resolve, name="incident-resolve"),
    path("remediation-runs/<int:pk>/approve/", incidents.run_approve, name="run-approve"),
    path("remediation-runs/<int:pk>/reject/", incidents.run_reject, name="run-reject"),
    path("remediation-runs/<int:pk>/rollback/", incidents.run_rollback, name="run-rollback"),
    path("alerts/", alerting.rules, name="alerting-rules"),
    path("alerts/groups/", alerting.groups, name="alerting-groups"),
    path("alerts/groups/<int:pk>/acknowledge/", alerting.group_acknowledge, name="alerting-group-acknowledge"),
    path("alerts/routes/", alerting.routes, name="alerting-routes"),
    path("alerts/receivers/", alerting.receivers, name="alerting-receivers"),
    path("alerts/silences/", alerting.silences, name="alerting-silences"),
    path("alerts/silences/<int:pk>/expire/", alerting.silence_expire, name="alerting-silence-expire"),
    path("alerts/deliveries/", alerting.deliveries, name="alerting-deliveries"),
]

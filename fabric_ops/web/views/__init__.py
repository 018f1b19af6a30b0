"""HTML pages of FabricOps (server-rendered Django templates, htmx polling for live parts).

One module per page family; every view requires a login and the model/named permissions of what it shows,
and every change goes through the same domain functions as the REST API and writes an audit record.
"""

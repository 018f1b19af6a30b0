"""The REST API under /api/ (Django REST framework)."""

"""Operations UI and REST API: roles, permissions, the audit log and the endpoints under /api/."""

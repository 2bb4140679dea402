"""Cadre accounts: sign-in and passwords, permissions and grants, the audit trail."""

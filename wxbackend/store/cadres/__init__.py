"""SQL for cadre accounts and the audit trail."""

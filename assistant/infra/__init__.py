"""Infrastructure the features share: jobs, leases, the audit trail, metrics, logging."""

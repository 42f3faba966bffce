"""Operations: practice leases across processes, health, readiness, metrics and status."""

"""What every capability shares: errors and their exit codes, whole-file writes, interrupts, progress,
names read from untrusted files, value tolerances, tenants and databases, how the CLI words a line."""

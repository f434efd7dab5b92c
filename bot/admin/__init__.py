"""Layer 4, administration: add, edit and remove essays, reindex, and the audit log."""

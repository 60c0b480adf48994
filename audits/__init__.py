"""Audits: the wrap-up checklist, the audit queue and the verification calls.
Stands on the pipeline only."""

"""Follow-up reminders (DOMAIN.md, "Follow-up reminders").

A reminder is a row: one per deal, kind and occurrence, enforced by the
database. ``rules`` says when each kind is created, falls due and is resolved;
``services`` runs the scan that applies the rules (Celery beat, every minute)
and the actions people take; ``digest`` emails each recipient their due
reminders; ``selectors`` reads the panel and the list.
"""

"""Append-only records: inserted once, never changed, never deleted.

Stage events, the payment and commission ledgers and verification calls all
keep history this way (DOMAIN.md; a correction is a new entry, never an edit).
"""

from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only: write a new entry.")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are never deleted.")


class AppendOnlyModel(models.Model):
    """A ledger row: inserted once, never changed, never deleted."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only: write a new entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} rows are never deleted.")

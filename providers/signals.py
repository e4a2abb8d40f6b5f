"""What the providers layer tells the layers above it (they connect receivers in their ``AppConfig.ready``).

providers knows nothing of weddings: what an outage means for the backups (a failover, stored figures
recomputed) is decided by the receivers, never by an import from here.
"""

from django.dispatch import Signal

# A breaker changed state or implied status; kwargs: transition (providers.breaker.Transition).
breaker_transitioned = Signal()
# A provider's breaker opened (kwargs: provider, reason) or closed (kwargs: provider).
breaker_opened = Signal()
breaker_closed = Signal()
# A provider row's status changed (kwargs: provider_id, status).
provider_status_changed = Signal()
# A provider was created or changed by a person (kwargs: provider, by, created, fields: the names of the fields
# that changed; "credentials" when new ones were entered, never their values).
provider_changed = Signal()
# A health round ended and the rows agree with the breakers (kwargs: providers, open_ids, closed_ids).
health_reconciled = Signal()

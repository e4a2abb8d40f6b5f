"""What the backups layer tells the layers above it (receivers connected in their ``AppConfig.ready``)."""

from django.dispatch import Signal

# A wedding's files were read back for a person (a restore, a download); kwargs: wedding, kind, bytes.
# The cost model counts it as access: read data is not cold data.
wedding_read = Signal()
# Verification found copies damaged or gone and marked them failed; kwargs: wedding, requested_by. The receiver
# (``tasks.repair_on_damage``) starts the repair and returns its job.
copies_damaged = Signal()

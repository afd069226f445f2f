"""The worker's and beat's entry point: `celery -A workers.entry worker` (and `beat`).

Celery's command line finds the app as a module attribute, so importing this module is
where the process reads its Settings; nothing else does that at import.
"""

from recovery.config import Settings
from recovery.db import use_clock_offset_file
from workers.celery_app import make_celery

settings = Settings()
use_clock_offset_file(settings.test_clock_file)
app = make_celery(settings)

"""`celery -A bench.noop_worker worker`: the no-op baseline's worker (see bench.baselines)."""

from bench.baselines import worker_app

app = worker_app()

"""`python -m services.contracts.worker`: timeline consumer, outbox relay and the scheduler."""
from crmkit.service import run_worker
from services.contracts import spec

if __name__ == "__main__":
    run_worker(spec())

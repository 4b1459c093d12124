"""`python -m services.notifications.worker`: consumes the notifications queue and relays its outbox."""
from crmkit.service import run_worker
from services.notifications import spec

if __name__ == "__main__":
    run_worker(spec())

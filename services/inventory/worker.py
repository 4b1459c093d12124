"""`python -m services.inventory.worker`: consumes inventory's queue and relays its outbox."""
from crmkit.service import run_worker
from services.inventory import spec

if __name__ == "__main__":
    run_worker(spec())

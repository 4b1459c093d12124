"""`python -m services.quotes.worker`: consumes the quotes queue and relays its outbox."""
from crmkit.service import run_worker
from services.quotes import spec

if __name__ == "__main__":
    run_worker(spec())

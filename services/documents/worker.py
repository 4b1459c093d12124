"""`python -m services.documents.worker`: consumes the documents queue and relays its outbox."""
from crmkit.service import run_worker
from services.documents import spec

if __name__ == "__main__":
    run_worker(spec())

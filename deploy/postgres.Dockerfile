# PostgreSQL from Debian's packages, on the same base as the application image.
#
# Choice (issue 8): the compose file builds RabbitMQ and PostgreSQL from Debian packages
# instead of pulling the official images, so one docker-compose.yml works both with a
# registry (BASE_IMAGE=debian:bookworm-slim, the default) and on machines without one
# (BASE_IMAGE=localhost/debian-base:bookworm, made by deploy/local-images.sh).
# Settings follow the official image's names: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data
RUN set -eux; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main.conf; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)" /usr/local/pgbin; \
    mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
ENV PATH=/usr/local/pgbin:$PATH
COPY deploy/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
USER postgres
EXPOSE 5432
VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --retries=20 CMD pg_isready -h 127.0.0.1 -q
CMD ["sh", "/usr/local/bin/postgres-entrypoint"]

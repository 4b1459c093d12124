# RabbitMQ from Debian's packages, on the same base as the application image
# (see deploy/postgres.Dockerfile for why the compose file builds these instead of pulling).
# User crm / password crm (rabbitmq.conf below), allowed from other hosts: the services and the
# departments' consumers connect over the network.  The node name is fixed so that the data
# volume is found again when the container is recreated with another hostname.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_CONFIG_FILE=/etc/rabbitmq/rabbitmq.conf
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends rabbitmq-server; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    printf '%s\n' \
        'listeners.tcp.default = 5672' \
        'loopback_users = none' \
        'default_user = crm' \
        'default_pass = crm' \
        'log.console = true' \
        'log.console.level = info' \
        'log.file = false' \
        > /etc/rabbitmq/rabbitmq.conf; \
    rm -f /etc/rabbitmq/rabbitmq-env.conf; \
    mkdir -p /var/lib/rabbitmq /var/log/rabbitmq; \
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq
USER rabbitmq
EXPOSE 5672
VOLUME /var/lib/rabbitmq
HEALTHCHECK --interval=10s --timeout=10s --retries=12 CMD rabbitmq-diagnostics -q check_port_connectivity
# the script under /usr/lib, not /usr/sbin/rabbitmq-server: that wrapper sends the log to a file
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]

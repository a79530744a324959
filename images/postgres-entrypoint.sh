#!/bin/sh
# The stand-in PostgreSQL image's entrypoint, after the official image's contract: on the first
# start, initdb with POSTGRES_USER and POSTGRES_PASSWORD, create POSTGRES_DB, run the scripts of
# /docker-entrypoint-initdb.d against a server that listens on no TCP port (so nothing outside can
# see it as ready), stop it; then exec the command (`postgres -c ...`) listening on every address.
set -o errexit -o nounset

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres /var/lib/postgresql "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the stand-in, like the official image, needs POSTGRES_PASSWORD}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C -D "$PGDATA" > /dev/null
    rm -f "$pwfile"
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start > /dev/null
    if [ "$db" != postgres ]; then  # initdb made `postgres`; the official image creates any other
        psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) echo "stand-in entrypoint: running $script"
                   psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d "$db" -q -f "$script" ;;
            *.sh) echo "stand-in entrypoint: running $script"; . "$script" ;;
            *) [ -e "$script" ] && echo "stand-in entrypoint: ignoring $script" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "stand-in entrypoint: PostgreSQL initialised; database $db, user $user"
fi
exec "$@"

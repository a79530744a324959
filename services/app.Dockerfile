# The image of your own app (APP=): the lab's pinned servers and its contract package, the app's requirements
# and its folder. Its build context is the folder lab/stack/app_image.py stages (`make images` with APP prints it), where
# this file is services/Dockerfile, beside app/, requirements.txt, servers.txt, contract/, gunicorn.conf.py and
# wheels/ (downloaded by the host: with OFFLINE=1 nothing is fetched here).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}
# OFFLINE=1 (IMAGES=local): install only the wheels the host downloaded
ARG OFFLINE=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    APP_PORT=8000 \
    APP_DIR=/app

WORKDIR /lab
COPY wheels/ /wheels/
COPY requirements.txt servers.txt /tmp/requirements/
COPY contract/ /tmp/contract/
# the app's pins and the lab's server pins in one resolution, as for the native backend's venv of the app
RUN if [ "$OFFLINE" = 1 ]; then set -- --no-index; fi \
    && pip install --no-cache-dir "$@" --find-links /wheels -r /tmp/requirements/requirements.txt \
       -r /tmp/requirements/servers.txt /tmp/contract \
    && rm -rf /wheels /tmp/requirements /tmp/contract \
    && useradd --system --uid 10001 --no-create-home lab \
    && mkdir -p services/django services/fastapi

# contract.serve runs each mode from its service's folder; Gunicorn's reads its settings there
COPY gunicorn.conf.py services/django/gunicorn.conf.py
COPY app/ /app/

USER 10001
EXPOSE 8000
ENTRYPOINT ["python", "-m", "contract.serve"]

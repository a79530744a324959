# A stand-in for python:3.11-slim-bookworm, for machines with no image registry (IMAGES=local):
# Debian bookworm's own Python 3.11 in a virtual environment first on PATH, so `python` and `pip`
# work as in the official image. The base is a Debian root filesystem made by debootstrap.
ARG BASE_IMAGE=concurrency-lab/debian:bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive
# apt reaches Debian's mirror over plain HTTP; nothing here needs HTTPS
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:$PATH \
    LANG=C.UTF-8
CMD ["python3"]

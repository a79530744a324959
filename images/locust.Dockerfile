# A stand-in for locustio/locust:2.47.0, for machines with no image registry (IMAGES=local): the
# same Locust from the pinned wheels, `locust` as the entrypoint, run as an unprivileged user.
ARG PYTHON_IMAGE=concurrency-lab/python:3.11-standin
FROM ${PYTHON_IMAGE}
COPY images/wheels/ /wheels/
RUN pip install --no-cache-dir --no-index --find-links /wheels locust==2.47.0 \
    && rm -rf /wheels \
    && useradd --create-home --uid 1000 locust
USER 1000
WORKDIR /home/locust
EXPOSE 8089 5557
ENTRYPOINT ["locust"]

# The controller's image: `docker build -t ecs-job-controller .` (or `make image`).
#
# Two stages. The build stage turns this checkout into wheels (the
# controller's, and every dependency's); the final stage installs those
# wheels with no index, then removes pip, so it holds Python, the installed
# controller and nothing that builds or fetches code. It runs as an
# unprivileged user. See deploy/README.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY schema ./schema
COPY manifests/examples ./manifests/examples
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels ecs-job-controller \
    && rm -rf /wheels \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 controller \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/controller controller
USER 10001:10001
# The default SQLite ledger (sqlite:.controller/state.db) is relative to here.
WORKDIR /home/controller
EXPOSE 9464
# Python's urllib: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=3)"]
ENTRYPOINT ["controller"]
CMD ["run", "--metrics-addr", "0.0.0.0:9464", "--log-format", "json"]

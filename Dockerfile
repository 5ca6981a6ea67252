# Segue in a container: `docker build -t segue .`, or `docker compose up --build`
# for Segue with its Redis (README "Run in a container").
#
# The builder stage installs Segue and its runtime dependencies (not the `dev`
# extra) into a virtualenv; the final stage, from the same base, gets that
# virtualenv and the files `segue run` reads relative to its working
# directory: config/segue.yml, config/demo_orders.json and dialogs/.

FROM python:3.11-slim-bookworm AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/segue

WORKDIR /src
# The package sources only: the tests, benchmarks and docs stay out.
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY connectors/ connectors/
COPY context_store/ context_store/
COPY dialogs/ dialogs/
RUN /opt/segue/bin/pip install --no-cache-dir .


FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/segue/bin:$PATH

# A fixed uid, so that files an operator mounts can be given to it.
RUN groupadd --system --gid 10001 segue \
    && useradd --system --uid 10001 --gid segue --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin segue

COPY --from=builder /opt/segue /opt/segue

# Settings find config/segue.yml, dialogs/ and config/demo_orders.json from the
# working directory. Owned by root: the bot only reads them.
WORKDIR /app
COPY config/ config/
COPY dialogs/ dialogs/

# Numeric, so a runtime that refuses root (runAsNonRoot) can tell it is not.
USER 10001:10001

EXPOSE 8080

# No curl in a slim image: Python itself asks /healthz. Starting can take
# half a minute on a busy host (every worker imports Segue afresh).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: `segue` is PID 1 and gets SIGTERM itself. It needs no init: it
# handles SIGTERM (drains, then exits) and, with --workers, waits for every
# worker it starts, so no zombie is left to reap.
CMD ["segue", "run", "--host", "0.0.0.0"]

# The planner image: the `planner` CLI and everything it imports, for the retraining
# CronJob the Pulumi program deploys (`planner retrain`, infra/components/retraining.py;
# `scaleplan:retraining.image` / `image_tag`).
#   docker build -t <repository-url>:0.1.0 .
#   docker push <repository-url>:0.1.0     # the stack output `planner_repository_url`
# CPU-only: torch comes from the PyTorch CPU index, so the image carries no CUDA.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sim ./sim
COPY policies ./policies
COPY planner ./planner
COPY infra ./infra
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir \
      --extra-index-url https://download.pytorch.org/whl/cpu .

FROM python:3.11-slim
# The CronJob's pod runs as UID 1000 with runAsNonRoot (infra/retrain_command.py JOB_UID).
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin planner
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg
USER 1000
WORKDIR /home/planner
ENTRYPOINT ["planner"]
CMD ["--help"]

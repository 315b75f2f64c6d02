# CPU image of the capstone service (labkit serve, port 8000) and browser demo (labkit demo, port 8501).
# Build:  docker build -t labkit-capstone .
# Serve:  docker run --rm -p 8000:8000 labkit-capstone
# Demo:   docker run --rm -p 8501:8501 --health-cmd "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')\"" \
#             labkit-capstone labkit demo --config configs/capstone_tiny.yaml --host 0.0.0.0
# The models of CONFIG are built (trained, seeded) at build time, so the container starts offline.
FROM python:3.11.11-slim-bookworm

ARG CONFIG=configs/capstone_tiny.yaml
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    LABKIT_CONFIG=${CONFIG}

# ffmpeg comes with imageio-ffmpeg; OpenCV headless needs only glib.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin labkit \
    && mkdir /app && chown labkit:labkit /app
WORKDIR /app

COPY --chown=labkit:labkit pyproject.toml constraints.txt README.md ./
COPY --chown=labkit:labkit labkit ./labkit
COPY --chown=labkit:labkit configs ./configs

# CPU wheels of the pinned torch first, then labkit with its service extra under the same pins.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
    && pip install -c constraints.txt ".[serve]"

USER 10001
# Generate the embedded dataset and build the config's models now (cached under /app/artifacts).
RUN python -c "import os; from labkit.pipeline.config import load_config; from labkit.pipeline.run import Pipeline; Pipeline(load_config(os.environ['LABKIT_CONFIG']))"

EXPOSE 8000 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["sh", "-c", "exec labkit serve --config \"$LABKIT_CONFIG\" --host 0.0.0.0 --port 8000"]

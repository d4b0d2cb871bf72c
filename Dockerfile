# The console's image for compose.yaml: web, worker and beat all run it.
FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/venv PATH=/venv/bin:$PATH
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
EXPOSE 8000
CMD ["gunicorn", "molecule.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8"]

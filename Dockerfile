FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DEBUG=false

# WeasyPrint (invoice and statement PDFs) lays pages out with Pango; a font to lay them in.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY pipeline ./pipeline
COPY billing ./billing
COPY receivables ./receivables
COPY online ./online
COPY audits ./audits
COPY reminders ./reminders
COPY dashboards ./dashboards
RUN pip install --upgrade pip && pip install .
COPY . .
# Static files are collected at build time and served by whitenoise.
RUN SECRET_KEY=build-only-not-secret STRIPE_SECRET_KEY=sk_build_only \
    STRIPE_PUBLISHABLE_KEY=pk_build_only STRIPE_WEBHOOK_SECRET=whsec_build_only \
    python manage.py collectstatic --noinput

RUN useradd --create-home cleared && mkdir -p /app/var && chown -R cleared /app/var
USER cleared
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]

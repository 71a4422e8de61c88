# Amend: a small image running `amend serve` (SQLite by default; set AMEND_DATABASE_URL for
# PostgreSQL). Build: docker build -t amend .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 amend
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER amend
WORKDIR /home/amend
ENV AMEND_DATABASE_URL=sqlite+aiosqlite:////home/amend/data/amend.db
RUN mkdir -p /home/amend/data
VOLUME ["/home/amend/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["amend", "serve", "--host", "0.0.0.0", "--port", "8000"]

# One image, two roles: `mnist-serve` (the default command) serves models from
# /models; `mnist-train` (the compose trainer's entrypoint) writes new versions.

# --- deps: a virtualenv with the dependencies only ---------------------------
FROM python:3.12-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Read from pyproject.toml alone, so this layer is reused until the dependency
# list changes, whatever happens to the code. EXTRAS adds optional dependency
# groups: `--build-arg EXTRAS=otel` for an image that exports traces over OTLP
# when OTEL_EXPORTER_OTLP_ENDPOINT is set.
ARG EXTRAS=""
COPY pyproject.toml ./
RUN python3 -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in os.environ['EXTRAS'].split(',') if e]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" > requirements.txt \
    && pip install --no-compile -r requirements.txt \
    && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -path '*/site-packages/*' -exec rm -rf {} + \
    # wheels that carry their C/C++ and Cython sources beside the compiled modules (pysimdjson
    # 7.6 MB, gevent and greenlet 3 MB, NumPy's headers): nothing compiles at run time
    && find /opt/venv -path '*/site-packages/*' \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \
        -o -name '*.pyx' -o -name '*.pxd' \) -delete

# --- build: the project itself, installed into /opt/app (not the venv), so the
# final image keeps dependencies and code in separate layers: a code change
# ships a layer of a few hundred kB, not the 130 MB of dependencies again.
FROM deps AS build
COPY README.md ./
COPY neuralnet ./neuralnet
COPY trainer ./trainer
COPY service ./service
RUN pip install --no-compile --no-deps --target /opt/app .

# --- runtime venv: pip and setuptools only install things (-20 MB); a .pth
# file puts /opt/app on the venv's path (sysconfig finds site-packages, so no
# python3.x path is spelled out here).
FROM deps AS venv
RUN pip uninstall --yes pip setuptools \
    && python3 -c "import sysconfig, pathlib; (pathlib.Path(sysconfig.get_paths()['purelib']) / 'mnist_serving_app.pth').write_text('/opt/app\n')"

# --- final stage: venv, default model, code, a non-root user -----------------
FROM python:3.12-slim
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /models /data \
    && chmod 1777 /data
# least to most often changed: dependencies, the default model, the code
COPY --from=venv /opt/venv /opt/venv
COPY models /models
COPY --from=build /opt/app /opt/app
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    MODELS_DIR=/models \
    MODEL_NAME=mnist \
    MODEL_VERSION=latest \
    MNIST_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/mnist-metrics
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
# No curl in a slim image: the standard library asks /health, which is 200
# only while a model that passed its self-check is serving.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]
# exec form: mnist-serve execs gunicorn, whose master is PID 1 and gets SIGTERM
CMD ["mnist-serve"]

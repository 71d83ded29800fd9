# syntax=docker/dockerfile:1
# Image of the confluent-invitation-operator controller.
#   docker build -t confluent-invitation-operator:0.1.0 .
# Print the CRD from the image (the ENTRYPOINT always runs `run`, so override it):
#   docker run --rm --entrypoint /usr/local/bin/confluent-invitation-operator IMAGE crd

# ---- build ----------------------------------------------------------------------------------
# Debian bookworm, like the runtime image below, so the glibc the binary links against exists there.
FROM rust:1-bookworm AS builder
WORKDIR /src
# .dockerignore lets only the workspace's Cargo manifests, sources and CRDs in.
COPY . .
# Cache mounts keep the crates.io registry and target/ between builds without putting them in a
# layer; the binary is therefore copied out of target/ within the same step. --locked: exactly the
# dependency versions that were reviewed and tested (Cargo.lock). -p: the operator alone; the
# workspace's Confluent mock is a test double and is not built.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p confluent-invitation-operator --bin confluent-invitation-operator \
 && install -D -m 0755 target/release/confluent-invitation-operator /out/confluent-invitation-operator

# ---- runtime --------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates (for Confluent Cloud's TLS) and nothing else:
# no shell, no package manager. The :nonroot tag runs as UID/GID 65532, matching the chart's
# securityContext, so the pod passes the "restricted" Pod Security Standard.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/confluent-invitation-operator /usr/local/bin/confluent-invitation-operator
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a user name.
USER 65532:65532
# /metrics, /healthz, /readyz (HTTP_ADDR default 0.0.0.0:8080)
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/confluent-invitation-operator", "run"]

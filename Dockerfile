# The manager image: a static musl binary on distroless/static, running as the non-root user.
#   docker build -t ghcr.io/capmaas/capmaas-manager:v0.1.0 .
# `make release IMAGE=...` writes the same reference into infrastructure-components.yaml.
FROM rust:1.89-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools cmake clang \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
# aws-lc-rs (the TLS crypto provider) compiles C: point its build at the musl toolchain.
ENV CC_x86_64_unknown_linux_musl=musl-gcc
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p capmaas-controllers --bin capmaas-manager \
    && cp target/x86_64-unknown-linux-musl/release/capmaas-manager /capmaas-manager

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /capmaas-manager /capmaas-manager
USER 65532:65532
EXPOSE 8080 9440
ENTRYPOINT ["/capmaas-manager"]

# The pushgateway-janitor image: one recipe for the release and for local builds.
#
# The binary is built outside the image (a stripped `cargo build --release --locked`), one per
# architecture, at target/image/bin/<TARGETARCH>/pushgateway-janitor: scripts/image.sh does it
# here, the release workflow on one runner per architecture. This file only puts it on a base.
#
# BASE: the release's base is distroless cc (glibc, libgcc, CA certificates, the IANA tz database
# that `schedule.timeZone` reads, a nonroot user 65532, no shell). scripts/image.sh builds the
# same from Debian's own packages where no registry can be reached and passes it here as
# --build-arg BASE=localhost/pushgateway-janitor-base:debian12.
ARG BASE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE}
# Set by docker buildx and podman from --platform (amd64, arm64).
ARG TARGETARCH
COPY --chmod=0755 target/image/bin/${TARGETARCH}/pushgateway-janitor /usr/local/bin/pushgateway-janitor
# nonroot's uid and gid; the chart runs it with runAsNonRoot, which needs a numeric user.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pushgateway-janitor"]

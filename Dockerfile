# The pushgateway-janitor image: `docker build -t pushgateway-janitor .` from the repository root.
#
# Builder: the same build command CI uses. Runtime: distroless cc (glibc, libgcc, CA certificates
# and the IANA tz database under /usr/share/zoneinfo, which `schedule.timeZone` reads), no shell.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/pushgateway-janitor /pushgateway-janitor

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /pushgateway-janitor /usr/local/bin/pushgateway-janitor
# nonroot's uid and gid; the chart runs it with runAsNonRoot, which needs a numeric user.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pushgateway-janitor"]

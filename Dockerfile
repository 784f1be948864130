# Builds the single `sextant` binary. DuckDB's bundled C++ makes the first build slow
# (about 30 minutes on 2 cores).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build -p sextant && cp target/debug/sextant /sextant

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /sextant /usr/local/bin/sextant
EXPOSE 9470
VOLUME /var/lib/sextant
ENTRYPOINT ["sextant"]
CMD ["serve", "--listen", "0.0.0.0:9470", "--data-dir", "/var/lib/sextant"]

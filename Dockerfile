# SpikeServe image: built on the official Swift image for Debian bookworm, run on slim Debian with
# only the runtime libraries, as a non-root user.
#   docker build -t spikeserve .
#   docker run -p 8080:8080 -v spikeserve-models:/srv/spikeserve/Models spikeserve
# Inside a container the server listens on all interfaces (SPIKESERVE_HOST=0.0.0.0: a published
# port reaches the container's own interface, never its loopback); outside one the default stays
# 127.0.0.1. The base images are parameters, so a local stand-in can replace them
# (scripts/container-test.sh).
# The toolchain the project is built and tested with (its packages need tools version 6.2 or later).
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
COPY . .
# The install steps are README's: scripts/setup.sh installs the C libraries' -dev packages.
RUN bash scripts/setup.sh \
    && swift build -c release --product spikeserve \
    && install -D "$(swift build -c release --show-bin-path)/spikeserve" /out/bin/spikeserve \
    && mkdir -p /out/swift \
    && cp -a "$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux/"*.so /out/swift/ \
    && rm -f /out/swift/libXCTest.so /out/swift/libTesting.so /out/swift/lib_Testing*.so

FROM ${RUNTIME_IMAGE}
# Runtime libraries only: OpenBLAS (its kernel is chosen at run time for the CPU), libjpeg-turbo,
# libpng, libexif, libarchive, the C++ runtime the Swift runtime uses, and curl for HEALTHCHECK.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libopenblas0-pthread libjpeg62-turbo libpng16-16 libexif12 libarchive13 libstdc++6 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 spikeserve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv/spikeserve --shell /usr/sbin/nologin spikeserve
COPY --from=build /out/swift/ /usr/lib/swift/linux/
COPY --from=build /out/bin/spikeserve /usr/local/bin/spikeserve
COPY --chown=10001:10001 Models /srv/spikeserve/Models
COPY --chown=10001:10001 Public /srv/spikeserve/Public
# OPENBLAS_NUM_THREADS=1: SpikeServe splits BLAS work over its own threads (SPIKESERVE_CORES caps
# them); OpenBLAS's own pool would start one thread per host core when the library loads.
ENV LD_LIBRARY_PATH=/usr/lib/swift/linux \
    OPENBLAS_NUM_THREADS=1 \
    SPIKESERVE_HOST=0.0.0.0 \
    SPIKESERVE_PORT=8080 \
    SPIKESERVE_MODELS=/srv/spikeserve/Models \
    SPIKESERVE_PUBLIC=/srv/spikeserve/Public
WORKDIR /srv/spikeserve
USER 10001:10001
# Models, their versions and the job state (Models/.spikeserve) persist here.
VOLUME ["/srv/spikeserve/Models"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s CMD ["sh", "-c", "curl -fsS http://127.0.0.1:${SPIKESERVE_PORT}/healthz"]
CMD ["spikeserve", "serve"]

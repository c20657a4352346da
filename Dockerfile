# SpikeServe on Debian with Swift. Build: docker build -t spikeserve .   Run: docker run -p 8080:8080 spikeserve
FROM swift:6.1-bookworm AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh && swift build -c release --product spikeserve \
    && cp "$(swift build -c release --show-bin-path)/spikeserve" /usr/local/bin/spikeserve

FROM swift:6.1-bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq libopenblas0-pthread libjpeg62-turbo libpng16-16 libexif12 libarchive13 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/spikeserve /usr/local/bin/spikeserve
COPY Models /srv/spikeserve/Models
COPY Public /srv/spikeserve/Public
WORKDIR /srv/spikeserve
EXPOSE 8080
CMD ["spikeserve", "system"]

# syntax=docker/dockerfile:1
# Build a static openhqm binary, then ship it alone in a distroless, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/openhqm ./cmd/openhqm

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/openhqm /usr/local/bin/openhqm
USER 65532:65532
EXPOSE 8000 9090
ENTRYPOINT ["/usr/local/bin/openhqm"]
# Without -c: $OPENHQM_CONFIG, the original's OPENHQM_* variables, a ConfigMap
# mounted at /etc/openhqm, or else the embedded default configuration.
CMD ["serve"]

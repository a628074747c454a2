# Multi-stage build of both services as static binaries (pure Go: no cgo).
# docker build --target authsvc -t mlgate/authsvc .   (likewise predictsvc)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/authsvc ./authsvc \
 && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/predictsvc ./predictsvc

# distroless/static: no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS authsvc
COPY --from=build /out/authsvc /authsvc
ENV AUTHSVC_GRPC_ADDR=0.0.0.0:50051 AUTHSVC_HTTP_ADDR=0.0.0.0:8081 AUTHSVC_DATA_DIR=/data
# The nonroot user owns /data, so a fresh volume is writable by the service.
COPY --from=build --chown=65532:65532 /tmp /data
VOLUME /data
EXPOSE 50051 8081
USER nonroot:nonroot
HEALTHCHECK --interval=5s --timeout=3s CMD ["/authsvc", "probe"]
ENTRYPOINT ["/authsvc"]

FROM gcr.io/distroless/static-debian12:nonroot AS predictsvc
COPY --from=build /out/predictsvc /predictsvc
ENV PREDICTSVC_GRPC_ADDR=0.0.0.0:50052 PREDICTSVC_HTTP_ADDR=0.0.0.0:8082
EXPOSE 50052 8082
USER nonroot:nonroot
HEALTHCHECK --interval=5s --timeout=3s CMD ["/predictsvc", "probe"]
ENTRYPOINT ["/predictsvc"]

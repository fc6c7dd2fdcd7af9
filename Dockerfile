# Caddy with the dws_notify module, in the official Caddy image pattern: a
# builder stage on caddy:<version>-builder runs xcaddy, and the final stage
# is the stock caddy:<version> image with the built binary copied over it.
# Build from a checkout of this repository (the build context):
#
#   docker build -t caddy-dws-notify .
#   docker build --build-arg CADDY_VERSION=2.11.9 -t caddy-dws-notify .
#   docker build --build-arg DWS_NOTIFY_VERSION=v1.2.3 -t caddy-dws-notify:v1.2.3 .
#
# Run it like the stock image (config in /etc/caddy, Caddy's data, and so the
# dedupe store in its default place, in the /data volume):
#
#   docker run -d --name gateway -p 80:80 -p 443:443 \
#     -v $PWD/Caddyfile:/etc/caddy/Caddyfile:ro -v $PWD/keys:/etc/caddy/dws:ro \
#     -v caddy_data:/data -v caddy_config:/config caddy-dws-notify
#
# docs/operations.md has the rest (keys, storage, reloads, backups).
# .ci/run builds the gateway with this file's xcaddy line against the
# checkout and runs the smoke test on that binary.

# The Caddy release (without the v), at least the one go.mod requires.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder

# The module comes from the build context, not from a registry. The go
# command still asks the proxy for its version list; "|off" makes any answer
# but a version list mean "not found", so the local copy is used (see
# xcaddy.sh). Caddy and its dependencies come from the proxy as usual.
ARG GOPROXY=https://proxy.golang.org|off
ENV GOPROXY=${GOPROXY}

# The plugin version `caddy list-modules --versions` shows. The build
# context has no git history to compute it from, so it is (devel) unless a
# release build passes it: --build-arg DWS_NOTIFY_VERSION=v1.2.0.
ARG DWS_NOTIFY_VERSION=

COPY . /src/dws_notify
RUN xcaddy build --with github.com/dwsnotify/dws_notify${DWS_NOTIFY_VERSION:+@$DWS_NOTIFY_VERSION}=/src/dws_notify --output /usr/bin/caddy

FROM caddy:${CADDY_VERSION}

COPY --from=builder /usr/bin/caddy /usr/bin/caddy

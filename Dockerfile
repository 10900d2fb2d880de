# The port-agent container image.
#
#   docker build -t port-agent --build-arg VERSION="$(node -p 'require("./package.json").version')" .
#   docker run --read-only --tmpfs /tmp -e PORT_ORG_ID=… -e PORT_CLIENT_ID=… -e PORT_CLIENT_SECRET=… port-agent
#
# Three stages: `build` compiles TypeScript with every dependency, `prod-deps` installs the
# production dependencies alone, and the final stage holds only those, the compiled output,
# config/ (the built-in payload mapping) and package.json, plus Debian's jq for the jq dialect.
# test/integration/production-layout.test.ts builds the final stage's /app from the same parts
# and runs the agent from it, read-only, as a non-root user; keep the two in step.

# Node.js 26 "Lithium" is the Active LTS line since 2026-10-28. Debian bookworm because its jq
# is 1.6, the jq the jq dialect is written and tested against (trixie ships jq 1.7, whose
# semantics and error texts differ).
ARG NODE_IMAGE=node:26-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
# No install scripts: the only dependency with one is esbuild (tsx's, for tests), not needed here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="port-agent" \
      org.opencontainers.image.description="Self-hosted Port execution agent: Kafka invocation events to internal HTTP services, results reported to Port" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# jq runs the jq dialect of payload mappings (src/mapping/jq-engine.ts). Debian's package is not
# pinned to a version: bookworm's security updates replace old versions in the archive.
# No ca-certificates package (the Node.js base image removes it, and bookworm's still carries CAs
# Mozilla has since dropped, TrustCor and E-Tugra among them): Node.js carries Mozilla's list. The
# agent itself reads the CA folders (AGENT_CA_DIRECTORIES: /usr/local/share/ca-certificates,
# /usr/share/ca-certificates, /etc/ssl/certs) at start, as uid 1000, for what is mounted there:
# nothing runs update-ca-certificates or needs root, and a mounted file must be readable by uid 1000.
# The agent never runs a package manager, so npm, npx, corepack and yarn leave the image.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends jq; \
    rm -rf /var/lib/apt/lists/*; \
    jq --version; \
    rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*

# kafkajs 2.2.4 passes negative delays to setTimeout (tulios/kafkajs#1751, open), which Node.js
# clamps to 1 ms, as it always did; the image's Node.js (unlike Node.js 20) also prints a
# TimeoutNegativeWarning on stderr at the first connection. Only that warning is silenced, in
# NODE_OPTIONS so that every `port-agent` started in the container has it.
ENV NODE_ENV=production NODE_OPTIONS=--disable-warning=TimeoutNegativeWarning
# The official chart mounts the payload mapping at /app/control_the_payload_config.json and the
# agent reads ./control_the_payload_config.json by default.
WORKDIR /app
# Owned by root and not writable by the agent's user: with a read-only root filesystem only /tmp
# is writable, and the agent writes nowhere (logs go to stdout).
COPY package.json package-lock.json ./
COPY config ./config
COPY --from=prod-deps /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
# `port-agent` on the PATH (`kubectl exec deploy/port-agent -- port-agent check-config`): the
# compiled CLI, which starts with `#!/usr/bin/env node`.
RUN chmod 0755 /app/dist/src/main.js && ln -s /app/dist/src/main.js /usr/local/bin/port-agent

# The image's `node` user, by number: Kubernetes' runAsNonRoot can only check a numeric user.
USER 1000:1000
# The health and metrics server (HEALTH_PORT): GET /healthz, /readyz, /metrics.
EXPOSE 8080
# SIGTERM: finish the runs in hand, commit, exit 0 (within AGENT_SHUTDOWN_GRACE_SECONDS).
STOPSIGNAL SIGTERM
# An entrypoint, so arguments reach the CLI: `docker run IMAGE render --mapping … --event …`.
ENTRYPOINT ["port-agent"]

# microseg controller image: Node.js 24, production dependencies only, runs as a non-root user on a
# read-only root filesystem (see manifests/deployment.yaml). Build: docker build -t microseg:dev .
# The image holds what the npm package holds (package.json `files`): the compiled JavaScript in dist/
# (built in the first stage), bin/, proto/, web/ and crds/; it runs dist/cli/main.js.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.ts

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script may download anything; the runtime never downloads either.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY proto ./proto
COPY web ./web
COPY crds ./crds
COPY manifests ./manifests
# 65532: the conventional "nonroot" uid; the files stay owned by root and read-only to it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=16", "--heap-growing-percent=25", "dist/cli/main.js"]
CMD ["controller"]

# microseg controller image: Node.js 24, production dependencies only, runs as a non-root user on a
# read-only root filesystem (see manifests/deployment.yaml). Build: docker build -t microseg:dev .
# Node 24 runs the TypeScript sources directly (type stripping), so there is no compile step.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script may download anything; the runtime never downloads either.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY crds ./crds
# 65532: the conventional "nonroot" uid; the files stay owned by root and read-only to it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=16", "--heap-growing-percent=25", "src/cli/main.ts"]
CMD ["controller"]

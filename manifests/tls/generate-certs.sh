#!/usr/bin/env bash
# One-shot TLS and token setup for jitnode without cert-manager.
#
#   manifests/tls/generate-certs.sh            # print the Secrets and the webhook caBundle patch
#   manifests/tls/generate-certs.sh --apply    # ... and apply them with kubectl (current context)
#
# Creates a private CA (ECDSA P-256, 10 years) and serving certificates (825 days) for
# jitnode-extender.<ns>.svc and jitnode-launcher.<ns>.svc, writes them as kubernetes.io/tls
# Secrets that also carry ca.crt (what kube-scheduler and the extender verify with), a random
# demand-stream token Secret (kept if it already exists when applying), and patches the CA into
# the MutatingWebhookConfiguration. Rerun before the certificates expire: the services reload
# renewed files without a restart. Needs openssl and, with --apply, kubectl.
set -euo pipefail

NAMESPACE="${JITNODE_NAMESPACE:-jitnode}"
WEBHOOK="${JITNODE_WEBHOOK:-jitnode-scheduler-name}"
DAYS_CA=3650
DAYS_CERT=825
APPLY=0
for arg in "$@"; do
  case "$arg" in
    --apply) APPLY=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077

openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$DAYS_CA" -subj "/CN=jitnode-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$work/ca.crt" 2>/dev/null

issue() {  # issue NAME: key and certificate for the Service NAME in $NAMESPACE
  local name="$1"
  local sans="DNS:${name},DNS:${name}.${NAMESPACE},DNS:${name}.${NAMESPACE}.svc,DNS:${name}.${NAMESPACE}.svc.cluster.local"
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/$name.key" 2>/dev/null
  openssl req -new -key "$work/$name.key" -subj "/CN=${name}.${NAMESPACE}.svc" -out "$work/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$sans" > "$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days "$DAYS_CERT" -sha256 -extfile "$work/$name.ext" -out "$work/$name.crt" 2>/dev/null
}

b64() { base64 < "$1" | tr -d '\n'; }

tls_secret() {  # tls_secret NAME: a kubernetes.io/tls Secret NAME-tls with ca.crt
  local name="$1"
  cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: ${name}-tls
  namespace: ${NAMESPACE}
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$work/$name.crt")
  tls.key: $(b64 "$work/$name.key")
  ca.crt: $(b64 "$work/ca.crt")
YAML
}

issue jitnode-extender
issue jitnode-launcher
openssl rand -hex 32 | tr -d '\n' > "$work/token"

{
  tls_secret jitnode-extender
  tls_secret jitnode-launcher
} > "$work/tls.yaml"
cat > "$work/token.yaml" <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: jitnode-demand-token
  namespace: ${NAMESPACE}
type: Opaque
data:
  token: $(b64 "$work/token")
YAML
patch="[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(b64 "$work/ca.crt")\"}]"

if [[ "$APPLY" == 1 ]]; then
  kubectl apply -f "$work/tls.yaml"
  # Rotating the token would cut every extender's stream: keep an existing one.
  kubectl -n "$NAMESPACE" get secret jitnode-demand-token >/dev/null 2>&1 || kubectl apply -f "$work/token.yaml"
  kubectl patch mutatingwebhookconfiguration "$WEBHOOK" --type=json -p "$patch"
else
  cat "$work/tls.yaml" "$work/token.yaml"
  echo "# webhook caBundle: kubectl patch mutatingwebhookconfiguration ${WEBHOOK} --type=json -p '${patch}'"
fi

# Sourced by the container scripts: Podman as it works on the test machines (docs/containers.md).
# The runc runtime (crun fails here), cgroupfs, and no default ulimits (setting RLIMIT_NOFILE /
# RLIMIT_NPROC is not permitted inside this machine's sandbox). `podman` below is a function, so
# every call in a sourcing script gets these.
OCWH_CACHE=${OPENCLAW_WEBHOOKS_CACHE:-$HOME/.cache/openclaw-webhooks}
mkdir -p "$OCWH_CACHE/podman"
if [ -z "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="$OCWH_CACHE/podman/containers.conf"
  cat >"$CONTAINERS_CONF.tmp" <<'EOF'
[containers]
default_ulimits = []
pids_limit = 0
[engine]
cgroup_manager = "cgroupfs"
EOF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
fi
podman() { command podman --runtime runc "$@"; }

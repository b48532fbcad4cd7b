#!/usr/bin/env bash
# The engine matrix: the whole suite on the host's Docker (20.10 on Debian 12), the integration tests on Docker
# 28.5 with overlay2 and with the containerd image store (the unit tests, which need no daemon, and the
# fault-injection harness, test/fault, run on the host's leg only), and a smoke suite on Docker 26 with each store; each engine other than the host's runs as a daemon of
# its own (native-scripts/with-engine.sh). Every leg runs even when one fails; the exit status
# is the first failure's. MATRIX_LEGS="host 28 28-ctrd 26 26-ctrd podman-5.8" picks legs (the last: the
# Podman tests against Podman 5.8: cross-engine, and cryo with CRYO_ENGINE=podman).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 1

# Docker 26 behaves as 28 does with cryo's runtime and as 20.10 does without it; its smoke suite covers
# checkpoint and restore, archives, migration between two daemons and crash recovery.
# Podman is the host's, and the Podman tests run on the host's leg (Podman 4.3) and the podman-5.8 leg only: the
# cross-engine ones have not been run in the engine legs' namespaces yet, and on the containerd image store Docker's
# image id is a manifest digest, which Podman's storage does not know (docs/compatibility.md).
ENGINE_SUITE=('test/integration/**/*.test.ts' '!test/integration/cross-engine.test.ts'
  '!test/integration/podman-engine.test.ts')
# What runs against Podman itself: cryo's files crossing to it, and cryo managing its containers (CRYO_ENGINE=podman).
PODMAN_SUITE=(test/integration/cross-engine.test.ts test/integration/podman-engine.test.ts)
# The sidecar's tests (about 2 minutes) leave out the containerd store's leg: a stream job's operator state does not
# touch the image store, and they run on the host's and 28's legs; so the matrix stays under CI's hour.
CTRD_SUITE=("${ENGINE_SUITE[@]}" '!test/integration/sidecar.test.ts')
SMOKE=(test/integration/checkpoint-restore.test.ts test/integration/cryo-runtime.test.ts
  test/integration/archives.test.ts test/integration/migrations.test.ts test/integration/crash-recovery.test.ts)

npm run build || exit 1
# Each leg's output is kept, so that the end of the run repeats what failed: CI shows only the tail of a long run.
logs=$(mktemp -d /tmp/cryo-matrix.XXXXXX)
legs=${MATRIX_LEGS:-host 28 28-ctrd 26 26-ctrd podman-5.8}
status=0
summary=()
failed=()
for leg in $legs; do
  started=$(date +%s)
  printf '\n######## engine %s ########\n' "$leg"
  {
  case "$leg" in
    host) npx ava ;;
    28) "$here/with-engine.sh" 28 -- npx ava "${ENGINE_SUITE[@]}" ;;
    28-ctrd) "$here/with-engine.sh" 28 --containerd-store -- npx ava "${CTRD_SUITE[@]}" ;;
    26) "$here/with-engine.sh" 26 -- npx ava "${SMOKE[@]}" ;;
    26-ctrd) "$here/with-engine.sh" 26 --containerd-store -- npx ava "${SMOKE[@]}" ;;
    # The Podman tests again, against Debian forky's Podman 5.8 from a private prefix.
    podman-5.8) "$here/install-podman-engine.sh" 5.8 >/dev/null &&
      CRYO_TEST_PODMAN=/opt/cryo/podman-5.8/bin/podman npx ava "${PODMAN_SUITE[@]}" ;;
    *) echo "unknown leg $leg" >&2; false ;;
  esac
  } 2>&1 | tee "$logs/$leg.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { [ "$status" -ne 0 ] || status=$rc; failed+=("$leg"); }
  summary+=("$(printf '%-8s %s in %d s' "$leg" "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" $(($(date +%s) - started)))")
done
printf '\n######## engine matrix ########\n'
printf '%s\n' "${summary[@]}"
for leg in "${failed[@]}"; do
  printf '\n######## what failed on %s ########\n' "$leg"
  grep -n '✘' "$logs/$leg.log" | head -40
  # ava ends a failing run with each failure's assertion, values and stack.
  tail -n 150 "$logs/$leg.log"
done
rm -rf "$logs"
exit "$status"

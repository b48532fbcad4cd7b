#!/usr/bin/env bash
# Merges "experimental": true into /etc/docker/daemon.json, keeping every other key.
# Docker's checkpoint API exists only with experimental features on (moby/moby#22049).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

file=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
mkdir -p "$(dirname "$file")"
node - "$file" <<'JS'
const fs = require('node:fs');
const file = process.argv[2];
let config = {};
if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim() !== '') {
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`ERROR: ${file} is not valid JSON (${e.message}); fix it first`);
    process.exit(1);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    console.error(`ERROR: ${file} must hold a JSON object`);
    process.exit(1);
  }
}
if (config.experimental === true) {
  console.log(`    ${file} already has "experimental": true`);
  process.exit(0);
}
config.experimental = true;
fs.writeFileSync(`${file}.tmp`, JSON.stringify(config, null, 2) + '\n');
fs.renameSync(`${file}.tmp`, file);
console.log(`    set "experimental": true in ${file} (other keys kept: ${Object.keys(config).filter((k) => k !== 'experimental').join(', ') || 'none'})`);
JS

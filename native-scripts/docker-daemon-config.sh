#!/usr/bin/env bash
# Merges cryo's needs into a dockerd configuration file, keeping every other key:
#   "experimental": true   Docker's checkpoint API exists only with experimental features on (moby/moby#22049);
#   "runtimes": {"cryo": {"path": RUNTIME}}   cryo's runtime (native-scripts/cryo-runtime), which restores;
#   with --containerd-store, "features": {"containerd-snapshotter": true} (a new daemon's image store only);
#   with --default-runtime, "default-runtime": "cryo", so that every new container can be restored in place.
# Usage: docker-daemon-config.sh FILE RUNTIME [--containerd-store] [--default-runtime].
# Prints "changed" when it wrote the file.
set -euo pipefail
file=$1
runtime=$2
shift 2
mkdir -p "$(dirname "$file")"
node - "$file" "$runtime" "$@" <<'JS'
const fs = require('node:fs');
const [file, runtime, ...flags] = process.argv.slice(2);
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
const before = JSON.stringify(config);
config.experimental = true;
config.runtimes = { ...(config.runtimes ?? {}), cryo: { path: runtime } };
if (flags.includes('--containerd-store'))
  config.features = { ...(config.features ?? {}), 'containerd-snapshotter': true };
if (flags.includes('--default-runtime')) config['default-runtime'] = 'cryo';
if (JSON.stringify(config) === before) {
  console.log(`    ${file} already has what cryo needs`);
  process.exit(0);
}
fs.writeFileSync(`${file}.tmp`, JSON.stringify(config, null, 2) + '\n');
fs.renameSync(`${file}.tmp`, file);
console.log(`    wrote ${file}: experimental, runtimes.cryo = ${runtime} (other keys kept)`);
console.log('changed');
JS

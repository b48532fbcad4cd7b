/**
 * Docker's own part of the floor a migration is held to: `docker start` of a small created container on the target
 * host, through the Engine API (POST /containers/{id}/start) as cryo's runtime restore calls it.
 */
import { request } from 'node:http';
import { execa } from 'execa';
import { BUSYBOX_IMAGE } from '../harness/prerequisites.js';
import { timed } from './raw-criu.js';

function startOver(socket: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'POST', path: `/containers/${id}/start` }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 204 ? resolve() : reject(new Error(`docker start answered ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Milliseconds for dockerd at `socket` to start a created busybox container (created, started, removed here). */
export async function dockerStartMs(socket: string, network: string[] = []): Promise<number> {
  const docker = (args: string[]) => execa('docker', ['-H', `unix://${socket}`, ...args]);
  const { stdout: id } = await docker(['create', ...network, BUSYBOX_IMAGE, 'sleep', '600']);
  try {
    const [, ms] = await timed(() => startOver(socket, id.trim()));
    return ms;
  } finally {
    await docker(['rm', '-f', id.trim()]);
  }
}

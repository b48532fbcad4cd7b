import { connect } from 'node:net';
import type { PageServerAddress } from '../../services/ports/container-runtime.js';

/**
 * Connects to a CRIU page server and hangs up at once: CRIU counts that as the end of its serving, and with
 * --leave-running leaves the tasks where they are (frozen, in a freeze of cryo's). Resolves either way.
 */
export function hangUp({ address, port }: PageServerAddress): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, address, () => socket.end());
    socket.setTimeout(5_000, () => socket.destroy());
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
  });
}

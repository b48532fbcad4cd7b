import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { SidecarUnavailableError } from '../../domain/errors/index.js';
import { SIDECAR_SOCKET_PATH, type Frame, type RegisterFrame } from '../../domain/sidecar/protocol.js';
import { encodeFrame, FrameDecoder, type Decoded } from '../../domain/sidecar/frame-codec.js';
import type {
  ConnectOptions,
  SidecarChannel,
  SidecarConnector,
} from '../../services/ports/sidecar-connector.js';

/**
 * Connects to the job's unix socket from the host through /proc/<pid>/root, so that no bind mount is needed;
 * the connection is closed again before any CRIU dump, which would otherwise find a socket with an outside peer.
 */
export class UnixSidecarConnector implements SidecarConnector {
  constructor(private readonly socketPath = SIDECAR_SOCKET_PATH) {}

  async connect(pid: number, options: ConnectOptions): Promise<SidecarChannel> {
    const file = `/proc/${pid}/root${this.socketPath}`;
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      try {
        return await this.open(file, deadline);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const retry = options.waitForSocket && (code === 'ENOENT' || code === 'ECONNREFUSED');
        if (!retry || Date.now() >= deadline) {
          if (err instanceof SidecarUnavailableError) throw err;
          throw new SidecarUnavailableError(`${file}: ${(err as Error).message}`);
        }
        await delay(100);
      }
    }
  }

  private open(file: string, deadline: number): Promise<SidecarChannel> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: file });
      const decoder = new FrameDecoder();
      const queue: Decoded[] = [];
      let handler: ((d: Decoded) => Promise<void>) | undefined;
      let register: RegisterFrame | undefined;
      let running = false;
      let closeError: Error | undefined;
      const timer = setTimeout(
        () => {
          socket.destroy();
          reject(new SidecarUnavailableError(`${file}: the job did not register in time`));
        },
        Math.max(deadline - Date.now(), 1000),
      );
      const closed = new Promise<Error | undefined>((r) => socket.once('close', () => r(closeError)));
      const pump = async () => {
        if (running || !handler) return;
        running = true;
        socket.pause();
        try {
          while (queue.length > 0) await handler(queue.shift()!);
        } catch (err) {
          closeError = err as Error;
          socket.destroy();
        } finally {
          running = false;
          if (!socket.destroyed) socket.resume();
        }
      };
      socket.on('error', (err) => {
        closeError = err;
        clearTimeout(timer);
        reject(err);
      });
      socket.on('data', (chunk: Buffer) => {
        let decoded: Decoded[];
        try {
          decoded = decoder.push(chunk);
        } catch (err) {
          closeError = err as Error;
          socket.destroy();
          clearTimeout(timer);
          reject(new SidecarUnavailableError(`${file}: ${(err as Error).message}`));
          return;
        }
        for (const d of decoded) {
          if (!register) {
            if (d.frame.type !== 'register') {
              closeError = new Error(`the job sent ${d.frame.type} before register`);
              socket.destroy();
              clearTimeout(timer);
              reject(new SidecarUnavailableError(`${file}: ${closeError.message}`));
              return;
            }
            register = d.frame;
            clearTimeout(timer);
            resolve(channel(register));
          } else queue.push(d);
        }
        void pump();
      });
      const channel = (reg: RegisterFrame): SidecarChannel => ({
        register: reg,
        onFrame: (h) => {
          handler = h;
          void pump();
        },
        send: (frame: Frame, payload?: Buffer) =>
          new Promise<void>((res, rej) => {
            if (socket.destroyed) rej(closeError ?? new Error('the sidecar connection is closed'));
            else socket.write(encodeFrame(frame, payload), (err) => (err ? rej(err) : res()));
          }),
        close: async () => {
          if (!socket.destroyed) socket.end();
          // Give a job that does not answer the end a moment, then cut the connection.
          const t = setTimeout(() => socket.destroy(), 5000);
          await closed;
          clearTimeout(t);
        },
        closed,
      });
    });
  }
}

import type { Writable } from 'node:stream';
import { MultiBar, type SingleBar } from 'cli-progress';
import type { Migration } from '../domain/migration.js';

const MB = 1_000_000;

/** What the bar shows of a migration: its phase, and the bytes sent of about how many. */
export function migrationProgress(m: Migration): { phase: string; sent: number; total: number } {
  const phase = m.phases.at(-1)?.name ?? 'preflight';
  return { phase, sent: m.bytesSent, total: Math.max(m.bytesTotal ?? 0, m.bytesSent, 1) };
}

/** A migration's phase lines as they end (`name: done in N ms`), and with a terminal a bar of the bytes sent. */
export class MigrationProgress {
  private reported = 0;
  private readonly bars: MultiBar | undefined;
  private readonly bar: SingleBar | undefined;

  constructor(private readonly stderr: Writable & { isTTY?: boolean }) {
    if (!stderr.isTTY) return;
    this.bars = new MultiBar({
      stream: stderr as NodeJS.WriteStream,
      format: '{phase} [{bar}] {percentage}% {sentMb}/{totalMb} MB',
      hideCursor: true,
      clearOnComplete: true,
    });
    this.bar = this.bars.create(1, 0, { phase: 'preflight', sentMb: '0.0', totalMb: '?' });
  }

  update(m: Migration): void {
    for (const p of m.phases.slice(this.reported)) {
      if (p.status === 'running') break;
      const how = p.status === 'skipped' ? ` (${p.detail})` : ` in ${p.ms} ms`;
      this.line(`${p.name}: ${p.status}${how}\n`);
      this.reported++;
    }
    if (!this.bar) return;
    const { phase, sent, total } = migrationProgress(m);
    this.bar.setTotal(total);
    this.bar.update(sent, {
      phase,
      sentMb: (sent / MB).toFixed(1),
      totalMb: m.bytesTotal === undefined ? '?' : (total / MB).toFixed(1),
    });
    // Draws now, phase lines first, rather than at the bars' next timer tick.
    this.bars?.update();
  }

  stop(): void {
    this.bars?.stop();
  }

  private line(text: string): void {
    if (this.bars) this.bars.log(text);
    else this.stderr.write(text);
  }
}

import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_DATA_DIR, DEFAULT_LISTEN, TOKEN_FILE } from '../defaults.js';
import { ErrorCode } from '../domain/errors/error-code.js';
import { CliError, CryoClient } from './cryo-client.js';

export const DEFAULT_URL = `http://${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port}`;

interface GlobalOptions {
  url?: string;
  token?: string;
}

/** Where a command writes: results (JSON, or a list's table) to stdout, progress and errors to stderr. */
export interface CliOutput {
  stdout: Writable;
  stderr: Writable;
}

/** What each command group is given: the program, where to print, and the runner of API calls. */
export interface CommandContext {
  program: Command;
  out: CliOutput;
  /** Wraps a command's action: makes the client, calls `fn`, prints its result (JSON, or a Printed text). */
  run: <A extends unknown[]>(
    fn: (client: CryoClient, ...args: A) => Promise<unknown>,
  ) => (...args: A) => Promise<void>;
}

export function commandContext(program: Command, out: CliOutput): CommandContext {
  const run =
    <A extends unknown[]>(fn: (client: CryoClient, ...args: A) => Promise<unknown>) =>
    async (...args: A) => {
      const client = new CryoClient(...(await endpoint(program.opts<GlobalOptions>())));
      const result = await fn(client, ...args);
      if (result instanceof Printed) out.stdout.write(result.text);
      else if (result !== undefined) out.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    };
  return { program, out, run };
}

export function reportCliError(err: unknown, out: CliOutput = process): boolean {
  // The reader went away (`cryo export ... -o - | head`): stop quietly, as a command killed by SIGPIPE would.
  if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
    process.exitCode = 141;
    return true;
  }
  if (!(err instanceof CliError)) return false;
  out.stderr.write(`cryo: ${err.code}: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
  if (err.details !== undefined) out.stderr.write(`details: ${JSON.stringify(err.details, null, 2)}\n`);
  process.exitCode = 1;
  return true;
}

async function endpoint(o: GlobalOptions): Promise<[string, string]> {
  const url = (o.url ?? process.env.CRYO_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  let token = o.token ?? process.env.CRYO_TOKEN;
  if (!token) {
    const file = path.join(process.env.CRYO_DATA_DIR ?? DEFAULT_DATA_DIR, TOKEN_FILE);
    token = await readFile(file, 'utf8').then(
      (t) => t.trim(),
      () => {
        throw new CliError(
          'NO_TOKEN',
          `no API token: no --token, no CRYO_TOKEN, and ${file} cannot be read`,
          'run as root on the host where cryo runs, or give --token',
        );
      },
    );
  }
  return [url, token];
}

/** The archive appears under its name only once complete. */
export async function writeAtomically(input: Readable, file: string): Promise<void> {
  const partial = `${file}.partial-${process.pid}`;
  try {
    await pipeline(input, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

/** Text a command prints as it is, instead of JSON. */
export class Printed {
  constructor(readonly text: string) {}
}

export interface Formatted {
  format: 'table' | 'json';
}

/** An API error told in the terms of a command made of several calls; anything else as it is. */
export function amended(err: unknown, change: (e: CliError) => { message?: string; hint?: string }): unknown {
  if (!(err instanceof CliError)) return err;
  const { message = err.message, hint = err.hint } = change(err);
  return new CliError(err.code, message, hint, err.details);
}

export function compressOption(): Option {
  return new Option('--compress <kind>', 'compression of the archive')
    .choices(['none', 'gzip', 'zstd'])
    .default('none');
}

export function usage(message: string): CliError {
  return new CliError(ErrorCode.VALIDATION_FAILED, message, 'see cryo restore --help');
}

export function formatOption(): Option {
  return new Option('--format <format>', "table, or json (the API's answer)")
    .choices(['table', 'json'])
    .default('table');
}

export function formatted<T>(o: Formatted, value: T, table: (value: T) => string): T | Printed {
  return o.format === 'json' ? value : new Printed(table(value));
}

export function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

/** One path segment: the server validates names and ids; this only keeps them from changing the path. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A target given with --pid, checked where commander cannot (the argument is a name without it). */
export function pidOf(target: string): number {
  if (!/^\d+$/.test(target) || Number(target) < 1) {
    throw new CliError(
      ErrorCode.VALIDATION_FAILED,
      `"${target}" is not a pid`,
      'give a positive process id with --pid',
    );
  }
  return Number(target);
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('a positive integer');
  return Number(value);
}

/** The last `count` non-empty lines of a log. */
export function tailLines(log: string, count: number): string[] {
  return log
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-count);
}

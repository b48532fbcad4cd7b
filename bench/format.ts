/** How the benches print figures: seconds, milliseconds, and a ratio against a baseline. */
export const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const fmtMs = (ms: number) => `${ms.toFixed(0)} ms`;
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

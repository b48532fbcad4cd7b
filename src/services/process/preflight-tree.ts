import { CriuUnavailableError, ErrorCode } from '../../domain/errors/index.js';
import { compareVersions } from '../../domain/host-fit.js';
import { preflightProblems } from '../../domain/preflight.js';
import type { CriuOptions, Preflight, Problem, ProcessReport } from '../../domain/process.js';
import type { ProcessServiceDeps } from './deps.js';

const MIN_CRIU = '4.2';

/**
 * Whether CRIU can dump the tree at `pid`, and each reason why not. `known`: the report, when the caller has read
 * it already; `console`: the tree is a container on a console of its own, the terminal on its root's stdio.
 */
export async function preflightTree(
  deps: Pick<ProcessServiceDeps, 'inspector' | 'engine'>,
  pid: number,
  options: CriuOptions,
  { known, console = false }: { known?: ProcessReport; console?: boolean } = {},
): Promise<Preflight> {
  const report = known ?? (await deps.inspector.report(pid));
  const root = report.processes.find((p) => p.pid === report.root);
  const consoles = new Set(
    console
      ? (root?.fds ?? []).filter((f) => f.fd <= 2 && f.kind === 'tty' && f.device).map((f) => f.device!)
      : [],
  );
  const problems: Problem[] = preflightProblems(report, options, {
    consoles,
    dumper: await deps.inspector.dumper(),
  });
  try {
    const version = await deps.engine.version();
    if (compareVersions(version, MIN_CRIU) < 0) {
      problems.push({
        code: 'CRIU_TOO_OLD',
        message: `CRIU ${version} is older than ${MIN_CRIU}`,
        hint: 'install CRIU >= 4.2 (native-scripts/install-criu.sh)',
      });
    }
  } catch (err) {
    if (!(err instanceof CriuUnavailableError)) throw err;
    problems.push({ code: ErrorCode.CRIU_UNAVAILABLE, message: err.message, hint: err.hint ?? '' });
  }
  return { checkpointable: problems.length === 0, problems };
}

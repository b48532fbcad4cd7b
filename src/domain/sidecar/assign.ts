import { intersect, keyGroupRange } from './key-groups.js';
import type { CheckpointMetadata } from './metadata.js';
import type { Assignment, Operator } from './protocol.js';

export class AssignmentError extends Error {}

/**
 * Redistributes a checkpoint's state to a (possibly rescaled) topology, as Flink does: a keyed handle goes to
 * every new subtask whose key-group range intersects its own (the subtask keeps only its key groups), operator
 * state of old subtask s goes to new subtask s mod p, and each source subtask gets every offset of its operator.
 */
export function assignState(
  metadata: CheckpointMetadata,
  operators: Operator[],
  maxParallelism: number,
): Assignment[] {
  if (maxParallelism !== metadata.maxParallelism) {
    throw new AssignmentError(
      `the job's maxParallelism is ${maxParallelism}, the checkpoint's ${metadata.maxParallelism}; it can never change`,
    );
  }
  const known = new Set(operators.map((o) => o.id));
  const missing = [...new Set(metadata.subtasks.map((s) => s.operator))].filter((o) => !known.has(o));
  if (missing.length > 0) {
    throw new AssignmentError(
      `the job has no operator ${missing.join(', ')}, whose state the checkpoint holds`,
    );
  }
  const out: Assignment[] = [];
  for (const op of operators) {
    const old = metadata.subtasks.filter((s) => s.operator === op.id);
    const offsets = Object.assign({}, ...old.map((s) => s.offsets)) as Record<string, number>;
    for (let j = 0; j < op.parallelism; j++) {
      const range = keyGroupRange(j, op.parallelism, maxParallelism);
      const handles = old.flatMap((s) =>
        s.handles.filter((h) =>
          h.keyGroupRange
            ? intersect(h.keyGroupRange, range) !== undefined
            : s.subtask % op.parallelism === j,
        ),
      );
      out.push({ operator: op.id, subtask: j, keyGroupRange: range, handles, offsets });
    }
  }
  return out;
}

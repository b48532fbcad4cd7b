import anyTest, { type TestFn } from 'ava';
import { TestContainers } from './containers.js';
import { TestCryo } from './cryo.js';
import { requirePrerequisites } from './prerequisites.js';

export interface CryoSuiteContext {
  cryo: TestCryo;
  containers: TestContainers;
}

/**
 * The `test` of an integration suite against one in-process cryo: prerequisites checked first, and the cryo and
 * every container the suite made removed at the end, whatever the outcome.
 */
export function cryoSuite(): TestFn<CryoSuiteContext> {
  const test = anyTest as TestFn<CryoSuiteContext>;
  test.before(async (t) => {
    await requirePrerequisites();
    t.context = { cryo: await TestCryo.start(), containers: new TestContainers() };
  });
  test.after.always(async (t) => {
    await t.context.containers?.removeAll();
    await t.context.cryo?.stop();
  });
  return test;
}
